"""Fixtures for the benchmark harness: a stored face dataset of generated images with exact labels
and a tiny open_clip architecture, both built at test time (no assets, no other stages' models)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import TINY_CLIP, coded_records


@pytest.fixture
def eval_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FACEVLM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="session")
def stored_faces(tmp_path_factory) -> Path:
    from facevlm.data.store import save_records

    return save_records(coded_records(), tmp_path_factory.mktemp("faces") / "faces")


@pytest.fixture
def tiny_clip_config() -> dict:
    return dict(TINY_CLIP)
