"""Fixtures for FaceCLIP tests: a stored toy face-caption dataset (see fakes.toy_records)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import toy_records


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from facevlm.data.store import save_records

    out = tmp_path_factory.mktemp("toy") / "toy"
    return save_records(toy_records(96, seed=1) + toy_records(16, seed=2, split="test"), out)
