"""Gallery store + search on both backends: add, search, filters, erase, persistence, recovery."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import pattern_image, pattern_png

from facevlm.errors import FacevlmError
from facevlm.index import files
from facevlm.index.ingest import IngestConfig, Ingestor
from facevlm.index.search import Query, Searcher
from facevlm.index.store import Gallery
from facevlm.schema import AttributeValue, FaceRecord

NO_EXPERTS = IngestConfig(detect=False, label=False)


def _add(gallery: Gallery, embedder, seeds: list[int]) -> list[int]:
    results = list(
        Ingestor(gallery, embedder, NO_EXPERTS).add_bytes((f"img{s}.png", pattern_png(s), None) for s in seeds)
    )
    assert [r.status for r in results] == ["added"] * len(seeds)
    return [i for r in results for i in r.face_ids]


def test_add_then_search_finds_the_face(gallery, embedder):
    ids = _add(gallery, embedder, list(range(12)))
    searcher = Searcher(gallery, embedder)
    hits = searcher.run(Query(image=pattern_image(5), top_k=3))
    assert hits[0].face.id == ids[5] and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].face.thumb and (gallery.root / hits[0].face.thumb).is_file()
    by_id = searcher.run(Query(face_id=ids[7], top_k=12))
    assert ids[7] not in [h.face.id for h in by_id] and len(by_id) == 11  # the query face itself is excluded
    text_hits = searcher.run(Query(text="a smiling person with glasses", top_k=20))
    assert sorted(h.face.id for h in text_hits) == sorted(ids)
    assert [h.score for h in text_hits] == sorted((h.score for h in text_hits), reverse=True)


def test_delete_is_erasure(gallery, embedder):
    ids = _add(gallery, embedder, [1, 2, 3])
    row = gallery.faces([ids[1]])[ids[1]]
    paths = [gallery.root / row.crop, gallery.root / row.thumb] + list(
        (gallery.root / "images").rglob(f"{row.image_sha256}.*")
    )
    assert all(p.is_file() for p in paths) and len(paths) == 3
    assert gallery.remove_faces([ids[1]]) == 1
    assert not any(p.exists() for p in paths)
    assert gallery.faces([ids[1]]) == {} and ids[1] not in gallery.backend.ids()
    assert gallery.db.execute("SELECT count(*) FROM attributes WHERE face_id=?", (ids[1],)).fetchone()[0] == 0
    hits = Searcher(gallery, embedder).run(Query(image=pattern_image(2), top_k=10))
    assert ids[1] not in [h.face.id for h in hits] and len(hits) == 2
    assert gallery.remove_faces([ids[1]]) == 0


def test_image_shared_by_faces_is_kept_until_its_last_face_goes(gallery, embedder):
    from facevlm.index.store import FaceEntry, ImageBlob

    blob = ImageBlob("ab" * 32, pattern_png(9), "png", "group.png", 96, 96)
    vecs = embedder.images([pattern_image(9), pattern_image(10)])
    a, b = gallery.add_faces([FaceEntry(v, crop=pattern_image(9)) for v in vecs], blob)
    original = gallery.root / f"images/ab/{'ab' * 32}.png"
    gallery.remove_faces([a])
    assert original.is_file()
    gallery.remove_image(gallery.faces([b])[b].image_id)
    assert not original.exists() and gallery.count() == 0


def test_filters_and_records(gallery, embedder):
    records = [
        FaceRecord(
            id=f"r{i}",
            image=pattern_image(100 + i),
            source="synthetic",
            licence="CC0",
            identity=f"id{i % 3}",
            attributes=[
                AttributeValue("expression", "happy" if i % 2 else "sad", "pseudo", 0.6 + 0.03 * i, "fer"),
                AttributeValue("Eyeglasses", i % 3 == 0),
            ],
        )
        for i in range(9)
    ]
    results = list(Ingestor(gallery, embedder, NO_EXPERTS).add_records(records))
    assert all(r.status == "added" for r in results)
    assert all(r.status == "skipped" for r in Ingestor(gallery, embedder, NO_EXPERTS).add_records(records))
    searcher = Searcher(gallery, embedder)
    hits = searcher.run(Query(text="a face", filters={"expression": ["happy"]}, top_k=9))
    assert {h.face.meta["record_id"] for h in hits} == {"r1", "r3", "r5", "r7"}
    strict = searcher.run(Query(text="a face", filters={"expression": ["happy"]}, min_prob=0.75, top_k=9))
    assert {h.face.meta["record_id"] for h in strict} == {"r5", "r7"}
    both = searcher.run(Query(text="a face", filters={"Eyeglasses": ["true"], "identity": ["id0"]}, top_k=9))
    assert {h.face.meta["record_id"] for h in both} == {"r0", "r3", "r6"}
    with pytest.raises(FacevlmError, match="sensitive"):
        searcher.run(Query(text="a face", filters={"gender_presentation": ["feminine"]}))
    with pytest.raises(FacevlmError, match="expression"):
        searcher.run(Query(text="a face", filters={"expression": ["ecstatic"]}))


def test_stats_count_labels_and_hide_sensitive_ones_by_default(gallery, embedder):
    records = [
        FaceRecord(
            id=f"s{i}",
            image=pattern_image(200 + i),
            source="synthetic",
            licence="CC0",
            attributes=[
                AttributeValue("Eyeglasses", i < 2),
                AttributeValue("yaw", 10.0 * i),
                AttributeValue("gender_presentation", "feminine" if i % 2 else "masculine", "pseudo", 0.9, "probe"),
            ],
        )
        for i in range(3)
    ]
    assert all(r.status == "added" for r in Ingestor(gallery, embedder, NO_EXPERTS).add_records(records))
    stats = gallery.stats()
    assert stats["faces"] == stats["vectors"] == 3
    assert stats["attributes"]["Eyeglasses=true"] == 2 and stats["attributes"]["Eyeglasses=false"] == 1
    assert stats["attributes"]["yaw"] == "n=3, range [0, 20]"  # numeric: one line, not one per value
    assert not any(k.startswith("gender_presentation") for k in stats["attributes"])
    shown = gallery.stats(sensitive=True)["attributes"]
    assert shown["gender_presentation=feminine"] == 1 and shown["gender_presentation=masculine"] == 2


def test_composed_query_moves_towards_the_edit(gallery, embedder):
    ids = _add(gallery, embedder, list(range(6)))
    searcher = Searcher(gallery, embedder)
    ref = gallery.embeddings([ids[0]])[ids[0]]
    composed = searcher.query_vector(Query(face_id=ids[0], edit="smiling", edit_weight=1.0))
    edited = embedder.texts([searcher.pdv.edit_template.format(edit="smiling")])[0]
    assert np.linalg.norm(composed) == pytest.approx(1.0, abs=1e-5)
    assert composed @ edited > ref @ edited  # the query moved towards the edit's text
    assert composed @ ref > 0.3  # ...while keeping the reference face
    assert len(searcher.run(Query(face_id=ids[0], edit="smiling", top_k=3))) == 3


def test_reopen_keeps_everything_and_rebuilds_a_stale_index(tmp_path, embedder, backend):
    path = tmp_path / "g"
    g = Gallery.open(path, model=embedder.model, dim=embedder.dim, backend=backend)
    ids = _add(g, embedder, list(range(5)))
    g.backend.remove(np.asarray(ids[:2]))  # index loses vectors the metadata still holds
    g.backend.add(
        np.asarray([999]), np.ones((1, embedder.dim), np.float32) / np.sqrt(embedder.dim)
    )  # and gains a stray
    g.close()
    (path / "crops" / "zz").mkdir(parents=True)
    (path / "crops" / "zz" / "orphan.jpg").write_bytes(b"x")
    g = Gallery.open(path)
    try:
        assert g.recovered == {"orphan_files": 1, "rebuilt": 1}
        assert sorted(g.backend.ids().tolist()) == ids and g.backend.count() == 5
        assert not (path / "crops" / "zz" / "orphan.jpg").exists()
        hits = Searcher(g, embedder).run(Query(image=pattern_image(0), top_k=1))
        assert hits[0].face.id == ids[0]
    finally:
        g.close()


def test_second_writer_and_wrong_model_are_refused(tmp_path, embedder):
    path = tmp_path / "g"
    g = Gallery.open(path, model=embedder.model, dim=embedder.dim)
    try:
        with pytest.raises(FacevlmError, match="open for writing"):
            Gallery.open(path)
        with pytest.raises(FacevlmError, match="embeddings, not"):
            Gallery.open(path, model="another-model", read_only=True)
        assert Gallery.open(path, read_only=True).count() == 0
    finally:
        g.close()


def test_ingest_reports_bad_images_and_skips_duplicates(gallery, embedder):
    ingestor = Ingestor(gallery, embedder, NO_EXPERTS)
    results = list(
        ingestor.add_bytes(
            [("a.png", pattern_png(1), None), ("bad.png", b"not an image", None), ("a-again.png", pattern_png(1), None)]
        )
    )
    assert [r.status for r in results] == ["added", "error", "skipped"]
    assert "bad.png" in results[1].error and gallery.count() == 1
    assert files.stored_files(gallery.root)  # crop, thumbnail and original are on disk


def test_delete_gallery_erases_the_directory_and_refuses_a_gallery_in_use(tmp_path, embedder, backend):
    from facevlm.index.lifecycle import TOMBSTONE, sweep_deleted
    from facevlm.index.store import delete_gallery

    path = tmp_path / "g"
    g = Gallery.open(path, model=embedder.model, dim=embedder.dim, backend=backend)
    _add(g, embedder, [1, 2])
    with pytest.raises(FacevlmError, match="open for writing") as busy:
        delete_gallery(path)  # this process holds the writer lock through `g`
    assert busy.value.status_code == 409 and (path / "gallery.json").is_file()
    g.close()
    assert delete_gallery(path) == 2
    assert not path.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(FacevlmError, match="does not exist") as missing:
        delete_gallery(path)
    assert missing.value.status_code == 404
    again = Gallery.open(path, model=embedder.model, dim=embedder.dim, backend=backend)
    assert again.count() == 0 and again.backend.count() == 0
    again.close()
    (tmp_path / f"{TOMBSTONE}g-1-2" / "crops").mkdir(parents=True)  # what a crash during a delete leaves
    assert sweep_deleted(tmp_path) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["g"]
