"""Fixtures for gallery tests: ONE tiny FaceCLIP saved to disk, so every
process of the session (ingest subprocesses, gateways) loads identical weights."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    from fakes import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-test")


@pytest.fixture
def linked_home(tmp_path: Path, assets_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$FACEVLM_HOME set to a fresh folder whose assets/ is the fetched assets (the identity model of a new
    gallery needs dlib-face-models), so named galleries land in the folder."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "assets").symlink_to(assets_home / "assets", target_is_directory=True)
    monkeypatch.setenv("FACEVLM_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def embedder(tiny_model: str):
    from facevlm.index.embed import get_embedder

    return get_embedder(tiny_model)


@pytest.fixture(params=["faiss", "milvus"])
def backend(request: pytest.FixtureRequest):
    from facevlm.index.backends import BackendConfig

    return BackendConfig(kind=request.param)


@pytest.fixture
def gallery(tmp_path: Path, embedder, backend):
    from facevlm.index.store import Gallery

    g = Gallery.open(tmp_path / "gallery", model=embedder.model, dim=embedder.dim, backend=backend)
    yield g
    g.close()
