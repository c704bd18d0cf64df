"""The identity space of a gallery on real photos (two of Obama, one of Biden): same_person finds the
person, verification and recognition decide by the identity threshold, clustering groups by person and
naming a cluster labels its faces; galleries refuse another identity model; old galleries keep working
for FaceCLIP and migrate with reembed to exactly the vectors ingest computes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facevlm.errors import FacevlmError
from facevlm.image import decode_image
from facevlm.index.ingest import FaceExperts, IngestConfig, Ingestor
from facevlm.index.people import cluster_gallery, latest_run, name_cluster
from facevlm.index.recognize import gallery_face, identify, resolve_threshold, upload_face, verify
from facevlm.index.reembed import reembed
from facevlm.index.search import Query, Searcher
from facevlm.index.store import Gallery, IdentitySpec
from facevlm.vision.identity import load_identity_model

PEOPLE = ("obama.jpg", "obama2.jpg", "biden.jpg")


def _photo(assets_home, name):
    return assets_home / "assets" / "samples" / name


def _add(gallery, embedder, assets_home, names=PEOPLE):
    cfg = IngestConfig(label=False)
    results = list(Ingestor(gallery, embedder, cfg).add_paths([_photo(assets_home, n) for n in names]))
    assert [len(r.face_ids) for r in results] == [1] * len(names), [(r.status, r.error) for r in results]
    return {n: r.face_ids[0] for n, r in zip(names, results)}


def _image(assets_home, name):
    return decode_image(_photo(assets_home, name).read_bytes()).image


@pytest.fixture
def people(tmp_path, embedder, backend, assets_home):
    spec = IdentitySpec.of(load_identity_model())
    g = Gallery.open(tmp_path / "people", model=embedder.model, dim=embedder.dim, backend=backend, identity=spec)
    ids = _add(g, embedder, assets_home)
    yield g, ids
    g.close()


@pytest.mark.assets
def test_same_person_verify_cluster_name_identify(people, embedder, assets_home):
    gallery, ids = people
    model = load_identity_model()
    obama, obama2, biden = (ids[n] for n in PEOPLE)
    assert gallery.identity.count() == 3 and sorted(gallery.identity.backend.ids()) == sorted(ids.values())
    searcher = Searcher(gallery, embedder, experts=FaceExperts(IngestConfig()))

    # same_person: the other Obama photo, and not Biden (beyond the identity threshold)
    by_id = searcher.run(Query(face_id=obama, match="same_person", top_k=5))
    assert [h.face.id for h in by_id] == [obama2] and by_id[0].distance < 0.6
    by_photo = searcher.run(Query(image=_image(assets_home, "obama3.jpg"), match="same_person", top_k=5))
    assert {h.face.id for h in by_photo} == {obama, obama2}
    assert [h.rank for h in by_photo] == [1, 2] and by_photo[0].distance <= by_photo[1].distance
    assert len(searcher.run(Query(face_id=obama, match="look_alike", top_k=5))) == 2  # FaceCLIP ranks everyone

    # verification: same / different, with the threshold and its source
    threshold = resolve_threshold(model)
    assert (threshold.value, threshold.source) == (0.6, "model") and "LFW" in threshold.reference
    a, b, c = (gallery_face(gallery, "people", i, model) for i in (obama, obama2, biden))
    assert verify(a, b, threshold, model.name).same and not verify(a, c, threshold, model.name).same
    upload = upload_face(model, FaceExperts(IngestConfig()), _image(assets_home, "obama3.jpg"), "image")
    assert verify(upload, a, threshold, model.name).same and upload.box is not None
    strict = verify(a, b, resolve_threshold(model, configured=0.5, requested=0.1), model.name)
    assert not strict.same and strict.threshold.source == "request"

    # recognition: nobody is labelled yet, so nobody is named
    assert identify(gallery, "people", upload, threshold, model.name).identity is None

    # clustering: the two Obama photos together, Biden alone; naming sets identities
    run = cluster_gallery(gallery, "people", threshold=threshold.value)
    assert sorted(sorted(c.face_ids) for c in run.clusters) == sorted([[biden], sorted([obama, obama2])])
    pair = next(c for c in run.clusters if len(c.face_ids) == 2)
    named = name_cluster(gallery, "people", pair.id, "  Barack Obama ")
    assert named.identity == "Barack Obama"
    assert {r.identity for r in gallery.faces([obama, obama2]).values()} == {"Barack Obama"}
    assert gallery.faces([biden])[biden].identity is None

    who = identify(gallery, "people", upload, threshold, model.name)
    assert who.identity == "Barack Obama" and {m.face.id for m in who.matches} == {obama, obama2}
    stranger = identify(gallery, "people", c, threshold, model.name)
    assert stranger.identity is None and stranger.matches == [] and stranger.nearest_distance > 0.6
    itself = identify(gallery, "people", a, threshold, model.name)  # a face is not matched with itself
    assert itself.identity == "Barack Obama" and [m.face.id for m in itself.matches] == [obama2]

    # a re-run clusters only the unlabelled face; the named cluster keeps its id and faces
    rerun = cluster_gallery(gallery, "people", threshold=threshold.value)
    assert [c.face_ids for c in rerun.clusters] == [[biden]] and rerun.id > run.id
    assert latest_run(gallery, "people").id == rerun.id

    # per-face erasure still works: out of the cluster and of the identity index
    assert gallery.remove_faces([obama2]) == 1
    assert name_cluster(gallery, "people", pair.id, "Barack Obama").face_ids == [obama]
    assert sorted(gallery.identity.backend.ids()) == sorted([obama, biden])
    assert gallery.stats()["identity_vectors"] == 2


@pytest.mark.assets
def test_composed_same_person_is_this_person_changed(people, embedder):
    gallery, ids = people
    searcher = Searcher(gallery, embedder)
    hits = searcher.run(Query(face_id=ids["obama.jpg"], edit="smiling", match="same_person", top_k=5))
    assert [h.face.id for h in hits] == [ids["obama2.jpg"]] and hits[0].distance < 0.6
    look_alike = searcher.run(Query(face_id=ids["obama.jpg"], edit="smiling", match="look_alike", top_k=5))
    assert len(look_alike) == 2


@pytest.mark.assets
def test_another_identity_model_is_refused(people, embedder, tmp_path):
    gallery, ids = people
    root = gallery.root
    gallery.close()
    with pytest.raises(FacevlmError, match="dlib-resnet-v1 identity vectors, not other-model") as refused:
        Gallery.open(root, identity=IdentitySpec("other-model", 128))
    assert refused.value.status_code == 409 and refused.value.code == "identity_model_mismatch"
    reopened = Gallery.open(root, read_only=True)
    try:
        other = _Other()
        searcher = Searcher(reopened, embedder, identity=other)
        with pytest.raises(FacevlmError, match="not other-model") as query:
            searcher.run(Query(face_id=ids["obama.jpg"], match="same_person"))
        assert query.value.status_code == 409
        with pytest.raises(FacevlmError, match="not other-model"):
            Ingestor(reopened, embedder, identity=other)
    finally:
        reopened.close()


class _Other:
    name, dim, threshold, threshold_source = "other-model", 128, 0.6, "test"

    def embed(self, image, faces):
        return np.zeros((len(faces), 128), np.float32)


@pytest.mark.assets
def test_identity_index_is_rebuilt_from_sqlite(people):
    gallery, ids = people
    root = gallery.root
    gallery.identity.backend.remove(np.asarray([ids["biden.jpg"]], np.int64))
    gallery.identity.backend.flush()
    gallery.close()
    reopened = Gallery.open(root)
    try:
        assert reopened.recovered["rebuilt"] == 1
        assert sorted(reopened.identity.backend.ids()) == sorted(ids.values())
    finally:
        reopened.close()


@pytest.mark.assets
def test_old_gallery_keeps_faceclip_and_migrates(tmp_path, embedder, assets_home):
    old = Gallery.open(tmp_path / "old", model=embedder.model, dim=embedder.dim)  # made before identity search
    ids = _add(old, embedder, assets_home)
    assert old.identity is None and "identity" not in json.loads((old.root / "gallery.json").read_text())
    for table in ("cluster_members", "clusters", "cluster_runs", "identity_vectors"):  # as before identity search
        old.db.execute(f"DROP TABLE {table}")
    old.close()

    reader = Gallery.open(tmp_path / "old", read_only=True)  # an old database, tables and all
    try:
        searcher = Searcher(reader, embedder)
        assert len(searcher.run(Query(face_id=ids["obama.jpg"], match="look_alike", top_k=5))) == 2
        assert len(searcher.run(Query(text="a face", top_k=5))) == 3
        with pytest.raises(FacevlmError, match="no identity vectors yet.*facevlm index reembed") as missing:
            searcher.run(Query(face_id=ids["obama.jpg"], match="same_person"))
        assert missing.value.status_code == 409 and missing.value.code == "identity_missing"
        with pytest.raises(FacevlmError, match="no identity vectors yet"):
            cluster_gallery(reader, "old", threshold=0.6)
    finally:
        reader.close()

    model = load_identity_model()
    writer = Gallery.open(tmp_path / "old")
    try:
        steps = list(reembed(writer, model, batch_size=2))
        assert [s.done for s in steps] == [2, 3] and writer.identity.spec == IdentitySpec.of(model)
        migrated = writer.identity.vectors(list(ids.values()))
    finally:
        writer.close()
    fresh = Gallery.open(tmp_path / "new", model=embedder.model, dim=embedder.dim, identity=IdentitySpec.of(model))
    try:
        new_ids = _add(fresh, embedder, assets_home)
        ingested = fresh.identity.vectors(list(new_ids.values()))
    finally:
        fresh.close()
    for name in PEOPLE:  # the migration computes exactly what ingest computes
        np.testing.assert_array_equal(migrated[ids[name]], ingested[new_ids[name]])
    done = Gallery.open(tmp_path / "old", read_only=True)
    try:
        assert json.loads((done.root / "gallery.json").read_text())["identity"] == {"model": model.name, "dim": 128}
        hits = Searcher(done, embedder).run(Query(face_id=ids["obama.jpg"], match="same_person"))
        assert [h.face.id for h in hits] == [ids["obama2.jpg"]]
    finally:
        done.close()


@pytest.mark.assets
def test_reembed_replaces_another_models_vectors_only_when_asked(people):
    gallery, ids = people
    with pytest.raises(FacevlmError, match="add --replace"):
        list(reembed(gallery, _Other()))
    list(reembed(gallery, _Other(), replace=True))
    assert gallery.identity.spec == IdentitySpec("other-model", 128) and gallery.identity.count() == 3
    assert gallery.db.execute("SELECT DISTINCT model FROM identity_vectors").fetchall() == [("other-model",)]
