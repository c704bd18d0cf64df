"""Fixtures for gallery tests: ONE tiny FaceCLIP saved to disk, so every
process of the session (ingest subprocesses, gateways) loads identical weights."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    from fakes import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-test")


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
