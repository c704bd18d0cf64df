"""The full ingest path on the real sample photos: detect -> 5-point landmarks -> crops -> FaceCLIP ->
expression pseudo-labels -> store; then face->face search with an uploaded photo. And the one face
pipeline: a photo gives the same box, crop and pseudo-label through `facevlm data`, `facevlm index add`
and the eval harness."""

from __future__ import annotations

import json

import pytest

from facevlm.image import decode_image
from facevlm.index.ingest import FaceExperts, IngestConfig, Ingestor
from facevlm.index.search import Query, Searcher
from facevlm.index.store import Gallery


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
            assert x1 > x0 and y1 > y0 and len(row.landmarks) == 5 and row.det_score >= cfg.detector.min_confidence
            (expr,) = [a for a in row.attributes if a.name == "expression"]
            assert expr.origin == "pseudo" and expr.model == "fer-mini-xception" and 0 < expr.prob <= 1
            (smile,) = [a for a in row.attributes if a.name == "Smiling"]  # from the same verdict
            assert smile.origin == "pseudo" and smile.model == expr.model and 0.5 <= smile.prob <= 1
            assert smile.value == "false" or expr.value == "happy"
        query = decode_image(photos[0].read_bytes()).image
        hits = Searcher(gallery, embedder, experts=FaceExperts(cfg)).run(Query(image=query, top_k=1))
        assert hits[0].face.source == str(photos[0]) and hits[0].score > 0.99
    finally:
        gallery.close()


PHOTO = "obama_partial_face.jpg"  # one face at the left border: its training crop must be padded there


def _data_engine_record(photo, tmp_path):
    """`facevlm data import imagefolder` -> `data detect` (the ingest's detector thresholds) -> `data label`."""
    from click.testing import CliRunner

    from facevlm.cli import cli
    from facevlm.data.store import iter_records, load_records

    (tmp_path / "photos" / "obama").mkdir(parents=True)
    (tmp_path / "photos" / "obama" / PHOTO).write_bytes(photo.read_bytes())
    cfg = IngestConfig().detector
    for args in (
        ["import", "imagefolder", str(tmp_path / "photos"), "--split", "all", "--out", str(tmp_path / "raw")],
        [
            "detect",
            str(tmp_path / "raw"),
            str(tmp_path / "faces"),
            "--min-size",
            str(cfg.min_size),
            "--min-conf",
            str(cfg.min_confidence),
        ],
        ["label", str(tmp_path / "faces"), str(tmp_path / "labelled")],
    ):
        result = CliRunner().invoke(cli, ["data", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    (record,) = iter_records(load_records(tmp_path / "labelled"))
    return record


def _gallery_face(photo, tmp_path, tiny_model):
    """`facevlm index add` of the same photo."""
    from click.testing import CliRunner

    from facevlm.cli import cli

    result = CliRunner().invoke(
        cli, ["index", "add", str(tmp_path / "g"), str(photo), "--model", tiny_model], catch_exceptions=False
    )
    assert result.exit_code == 0 and "1 faces added" in result.output, result.output
    gallery = Gallery.open(tmp_path / "g", read_only=True)
    try:
        (face_id,) = gallery.list_ids()
        return gallery.faces([face_id])[face_id], gallery.embeddings([face_id])[face_id], gallery.root
    finally:
        gallery.close()


def _eval_record():
    """The eval harness's samples loader, stopped at the photo."""
    from facevlm.eval.samples import sample_records

    return next(
        r for r in sample_records(min_confidence=IngestConfig().detector.min_confidence) if r.id == f"samples/{PHOTO}#0"
    )


@pytest.mark.assets
def test_one_photo_same_face_through_data_engine_gallery_and_eval(assets_home, tmp_path, tiny_model, embedder):
    import numpy as np
    from PIL import Image

    from facevlm.data.store import face_crop
    from facevlm.eval.datasets import from_records
    from facevlm.index.files import CROP_SIZE

    photo = assets_home / "assets" / "samples" / PHOTO
    record = _data_engine_record(photo, tmp_path)
    row, vector, root = _gallery_face(photo, tmp_path, tiny_model)
    evaluated = _eval_record()

    # one box, one set of landmarks: found once by the pipeline, stored as found
    assert record.box == row.box == evaluated.box and record.box[0] == 0.0
    assert record.landmarks == row.landmarks == evaluated.landmarks and len(record.landmarks) == 5
    # one training crop, pixel for pixel (padded at the left border, not clipped)
    crop = face_crop(record)
    eval_crop = from_records([evaluated], "samples", "test").images[0]
    assert np.array_equal(np.asarray(crop), np.asarray(eval_crop))
    x0, _, x1, _ = record.box
    assert crop.width == round(x1 + 0.2 * (x1 - x0)) - round(x0 - 0.2 * (x1 - x0))
    np.testing.assert_array_equal(vector, embedder.images([crop])[0])  # the gallery embedded exactly this crop
    stored = Image.open(root / row.crop)
    expected = crop.copy()
    expected.thumbnail((CROP_SIZE, CROP_SIZE))
    assert stored.size == expected.size
    assert np.abs(np.asarray(stored, np.float32) - np.asarray(expected, np.float32)).mean() < 3  # JPEG only
    # one pseudo-label
    labels = [{a.name: a for a in r.attributes}["expression"] for r in (record, row, evaluated)]
    assert {(a.value, a.origin, a.model) for a in labels} == {("happy", "pseudo", "fer-mini-xception")}
    assert [a.prob for a in labels] == pytest.approx([labels[0].prob] * 3, abs=1e-6)
    assert record.meta["pseudo_probs"]["expression"]["happy"] == pytest.approx(labels[0].prob, abs=1e-4)
