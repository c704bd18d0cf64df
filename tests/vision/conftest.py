"""Shared helpers for the face-expert tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sample_path(assets_home):
    """Path of a sample photo by file name, from the fetched `samples` asset."""
    from facevlm import assets

    index = {Path(s["file"]).name: Path(s["path"]) for s in assets.samples()}

    def find(name: str) -> Path:
        assert name in index, f"sample {name} not in the samples asset ({', '.join(sorted(index))})"
        return index[name]

    return find
