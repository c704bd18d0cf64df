"""kill -9 in the middle of a 200-image ingest: everything committed survives and is searchable, no
orphan rows, vectors or files; re-running the same command finishes the job without duplicates."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import write_pattern_images
from processes import finishes, killed_midway

from facevlm.index import files
from facevlm.index.store import Gallery

N_IMAGES = 200


def _ingest_cmd(gallery: str, folder: str, model: str, backend: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "facevlm.cli",
        "index",
        "add",
        gallery,
        folder,
        "--no-detect",
        "--no-label",
        "--model",
        model,
        "--backend",
        backend,
        "--batch-size",
        "4",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["faiss", "milvus"])
def test_kill_9_mid_ingest(tmp_path, tiny_model, embedder, backend):
    folder = tmp_path / "photos"
    write_pattern_images(folder, N_IMAGES)
    gallery = str(tmp_path / "gallery")
    cmd = _ingest_cmd(gallery, str(folder), tiny_model, backend)
    killed_midway(cmd, Path(gallery) / "meta.sqlite", "faces", 40, "ingest")

    g = Gallery.open(gallery)
    try:
        committed = sorted(r for (r,) in g.db.execute("SELECT id FROM faces"))
        assert 40 <= len(committed) < N_IMAGES
        assert sorted(g.backend.ids().tolist()) == committed  # no orphan or missing vectors
        referenced = {p for row in g.db.execute("SELECT crop, thumb FROM faces") for p in row}
        referenced |= {p for (p,) in g.db.execute("SELECT path FROM images")}
        assert files.stored_files(g.root) == referenced  # no orphan files, no missing ones
        assert (
            g.db.execute("SELECT count(*) FROM images WHERE id NOT IN (SELECT image_id FROM faces)").fetchone()[0] == 0
        )
        assert (
            g.db.execute("SELECT count(*) FROM attributes WHERE face_id NOT IN (SELECT id FROM faces)").fetchone()[0]
            == 0
        )
        vecs = g.embeddings(committed)
        found = g.search(np.stack([vecs[i] for i in committed]), 1)
        assert [hits[0][0] for hits in found] == committed  # every committed face is searchable
    finally:
        g.close()

    assert f"{len(committed)} skipped" in finishes(cmd)
    g = Gallery.open(gallery, read_only=True)
    try:
        assert g.count() == N_IMAGES
        assert g.db.execute("SELECT count(DISTINCT sha256) FROM images").fetchone()[0] == N_IMAGES
    finally:
        g.close()
