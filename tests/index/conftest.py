"""Fixtures for gallery tests: an isolated FACEVLM_HOME and ONE tiny FaceCLIP saved to disk, so every
process of the session (ingest subprocesses, gateways) loads identical weights."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    home = tmp_path_factory.mktemp("facevlm_home")
    os.environ["FACEVLM_HOME"] = str(home)
    import torch

    from facevlm.clip import load

    torch.manual_seed(0)
    folder = home / "models" / "tiny-test"
    load("facevlm-clip-tiny").save(folder)
    return str(folder)


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
