"""Where facevlm keeps things on disk.

Everything generated (assets, models, datasets, galleries, engine PIDs) lives under one root so that a
user can move or wipe it in one step: `$FACEVLM_HOME`, default `~/.cache/facevlm`.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """The facevlm data root; created on first use."""
    root = Path(os.environ.get("FACEVLM_HOME", "~/.cache/facevlm")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def assets_dir() -> Path:
    return home() / "assets"


def models_dir() -> Path:
    return home() / "models"


def datasets_dir() -> Path:
    return home() / "datasets"


def run_dir() -> Path:
    """PID files and logs of processes facevlm starts (engine, gateway)."""
    path = home() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path
