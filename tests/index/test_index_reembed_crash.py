"""kill -9 in the middle of `facevlm index reembed` (the identity migration of an old gallery): the gallery
stays a consistent FaceCLIP-only gallery (identity queries refused, nothing half-indexed), and running
the same command again finishes the migration without recomputing what was done."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from fakes import write_pattern_images
from processes import committed_rows, finishes, killed_midway

from facevlm.errors import FacevlmError
from facevlm.image import open_image
from facevlm.index.ingest import IngestConfig, Ingestor
from facevlm.index.search import Query, Searcher
from facevlm.index.store import Gallery
from facevlm.vision.identity import FacePlace, load_identity_model

N_FACES = 160


@pytest.mark.slow
@pytest.mark.assets
def test_kill_9_mid_reembed(tmp_path, linked_home, embedder, backend):
    photos = write_pattern_images(tmp_path / "photos", N_FACES)
    root = tmp_path / "old"
    old = Gallery.open(root, model=embedder.model, dim=embedder.dim, backend=backend)  # no identity space
    list(Ingestor(old, embedder, IngestConfig(detect=False, label=False)).add_paths(photos))
    old.close()

    cmd = [sys.executable, "-m", "facevlm.cli", "index", "reembed", str(root), "--batch-size", "4"]
    killed_midway(cmd, root / "meta.sqlite", "identity_vectors", 24, "reembed")

    g = Gallery.open(root, read_only=True)
    try:
        done = committed_rows(root / "meta.sqlite", "identity_vectors")
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

    assert f"{N_FACES} of {N_FACES} faces have dlib-resnet-v1 identity vectors" in finishes(cmd)
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
