"""kill -9 in the middle of `facevlm index reembed` (the identity migration of an old gallery): the gallery
stays a consistent FaceCLIP-only gallery (identity queries refused, nothing half-indexed), and running
the same command again finishes the migration without recomputing what was done."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from fakes import write_pattern_images

from facevlm.errors import FacevlmError
from facevlm.image import open_image
from facevlm.index.ingest import IngestConfig, Ingestor
from facevlm.index.search import Query, Searcher
from facevlm.index.store import Gallery
from facevlm.vision.identity import FacePlace, load_identity_model

N_FACES = 160


def _migrated(db: str) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
    try:
        return con.execute("SELECT count(*) FROM identity_vectors").fetchone()[0]
    except sqlite3.OperationalError:  # the migration has not created its table yet
        return 0
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.assets
def test_kill_9_mid_reembed(tmp_path, linked_home, embedder, backend):
    photos = write_pattern_images(tmp_path / "photos", N_FACES)
    root = tmp_path / "old"
    old = Gallery.open(root, model=embedder.model, dim=embedder.dim, backend=backend)  # no identity space
    list(Ingestor(old, embedder, IngestConfig(detect=False, label=False)).add_paths(photos))
    old.close()

    cmd = [sys.executable, "-m", "facevlm.cli", "index", "reembed", str(root), "--batch-size", "4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while _migrated(str(root / "meta.sqlite")) < 24 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"reembed ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    g = Gallery.open(root, read_only=True)
    try:
        done = _migrated(str(root / "meta.sqlite"))
        assert 24 <= done < N_FACES and g.identity is None  # half-way: not claimed as an identity gallery
        assert "identity" not in json.loads((root / "gallery.json").read_text())
        searcher = Searcher(g, embedder)
        assert len(searcher.run(Query(text="a face", top_k=10))) == 10  # FaceCLIP answers as before
        with pytest.raises(FacevlmError, match="no identity vectors yet") as refused:
            searcher.run(Query(face_id=1, match="same_person"))
        assert refused.value.status_code == 409
        rows = g.db.execute("SELECT face_id, vector FROM identity_vectors").fetchall()
        partial = {fid: np.frombuffer(v, np.float32) for fid, v in rows}
    finally:
        g.close()

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{N_FACES} of {N_FACES} faces have dlib-resnet-v1 identity vectors" in rerun.stdout
    g = Gallery.open(root, read_only=True)
    try:
        ids = sorted(g.list_ids(0, N_FACES + 1))
        assert g.identity is not None and g.identity.count() == N_FACES
        assert sorted(g.identity.backend.ids().tolist()) == ids  # every face indexed once, nothing orphaned
        after = g.identity.vectors(ids)
        for fid, vec in partial.items():  # what was committed before the kill was kept, not recomputed
            np.testing.assert_array_equal(after[fid], vec)
        model = load_identity_model()
        photo = g.faces([ids[-1]])[ids[-1]].source
        expected = model.embed(open_image(photo), [FacePlace()])[0]  # the face is the whole (pre-cropped) image
        np.testing.assert_allclose(after[ids[-1]], expected, atol=1e-6)
        hits = Searcher(g, embedder).run(Query(face_id=ids[0], match="same_person", top_k=3))
        assert all(h.distance < model.threshold for h in hits)
    finally:
        g.close()
