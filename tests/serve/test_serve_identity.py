"""Identity over HTTP on real photos (two of Obama, one of Biden): same_person search, /v1/faces/verify,
/identify, /clusters and naming a cluster; every mistake a client can make answers a 4xx error JSON;
galleries without identity vectors, or with another identity model's, are refused with 409."""

from __future__ import annotations

import io

import pytest
from fakes import pattern_png
from PIL import Image

from facevlm.image import to_data_uri
from facevlm.index.ingest import IngestConfig, Ingestor
from facevlm.index.store import Gallery, IdentitySpec


def _sample(assets_home, name: str) -> bytes:
    return (assets_home / "assets" / "samples" / name).read_bytes()


def _uri(data: bytes) -> str:
    return to_data_uri(data, "image/png" if data.startswith(b"\x89PNG") else "image/jpeg")


def _error(res, status: int, code: str | None = None) -> dict:
    assert res.status_code == status, res.text
    error = res.json()["error"]
    assert error["message"] and "\n" not in error["message"] and error["type"]
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture(scope="module")
def people(detecting_gateway, assets_home):
    """Gallery `people`: face ids of obama.jpg, obama2.jpg, biden.jpg."""
    names = ("obama.jpg", "obama2.jpg", "biden.jpg")
    files = [("file", (n, _sample(assets_home, n), "image/jpeg")) for n in names]
    with detecting_gateway.client() as http:
        added = http.post("/v1/galleries/people/faces", files=files)
    assert added.status_code == 201, added.text
    ids = [image["face_ids"] for image in added.json()["images"]]
    assert [len(i) for i in ids] == [1, 1, 1], ids
    return dict(zip(names, (i[0] for i in ids)))


@pytest.mark.assets
def test_same_person_verify_identify_and_clusters(detecting_gateway, people, assets_home):
    obama, obama2, biden = people["obama.jpg"], people["obama2.jpg"], people["biden.jpg"]
    obama3 = _uri(_sample(assets_home, "obama3.jpg"))
    with detecting_gateway.client() as http:
        stats = http.get("/v1/galleries/people").json()
        assert stats["identity_model"] == "dlib-resnet-v1" and stats["identity_vectors"] == 3

        search = {"gallery": "people", "query": {"face": {"image": obama3}, "match": "same_person"}, "top_k": 5}
        hits = http.post("/v1/faces/search", json=search).json()
        assert {h["id"] for h in hits["data"]} == {obama, obama2} and hits["query"]["match"] == "same_person"
        assert all(h["distance"] < 0.6 and 0 < h["score"] <= 1 for h in hits["data"])
        search["query"]["match"] = "look_alike"
        assert len(http.post("/v1/faces/search", json=search).json()["data"]) == 3

        uploads = {"faces": [{"image": _uri(_sample(assets_home, "obama.jpg"))}, {"image": obama3}]}
        same = http.post("/v1/faces/verify", json=uploads).json()
        assert same["object"] == "face.verification" and same["same"] is True and same["distance"] < 0.6
        assert (same["threshold"], same["threshold_source"], same["model"]) == (0.6, "model", "dlib-resnet-v1")
        assert "99.38%" in same["threshold_reference"]
        assert [f["source"] for f in same["faces"]] == ["upload", "upload"] and len(same["faces"][0]["box"]) == 4
        refs = {"faces": [{"gallery": "people", "face_id": obama}, {"gallery": "people", "face_id": biden}]}
        different = http.post("/v1/faces/verify", json=refs).json()
        assert different["same"] is False and different["distance"] > 0.6
        assert different["faces"][1] == {"source": "gallery", "gallery": "people", "face_id": biden}
        mixed = {"faces": [{"image": obama3}, {"gallery": "people", "face_id": obama2}], "threshold": 0.1}
        strict = http.post("/v1/faces/verify", json=mixed).json()
        assert (strict["same"], strict["threshold_source"], strict["threshold_reference"]) == (False, "request", None)

        nobody = http.post("/v1/galleries/people/identify", json={"image": obama3}).json()
        assert (nobody["status"], nobody["identity"], nobody["matches"]) == ("unknown", None, [])

        run = http.post("/v1/galleries/people/clusters", json={})
        assert run.status_code == 201, run.text
        clusters = run.json()["data"]
        assert sorted(sorted(c["face_ids"]) for c in clusters) == sorted([sorted([obama, obama2]), [biden]])
        pair = next(c for c in clusters if c["size"] == 2)
        thumb = http.get(pair["representatives"][0]["thumbnail_url"])
        assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).size[0] <= 128
        named = http.post(f"/v1/galleries/people/clusters/{pair['id']}/name", json={"identity": "Barack Obama"})
        assert named.status_code == 200 and named.json()["identity"] == "Barack Obama"
        assert http.get(f"/v1/galleries/people/faces/{obama2}").json()["identity"] == "Barack Obama"
        assert http.get(f"/v1/galleries/people/faces/{biden}").json()["identity"] is None

        who = http.post("/v1/galleries/people/identify", json={"image": obama3}).json()
        assert (who["status"], who["identity"]) == ("known", "Barack Obama") and len(who["box"]) == 4
        assert {m["id"] for m in who["matches"]} == {obama, obama2} and all(m["distance"] < 0.6 for m in who["matches"])
        stranger = http.post("/v1/galleries/people/identify", json={"face_id": biden, "top_k": 3}).json()
        assert stranger["status"] == "unknown" and stranger["matches"] == [] and stranger["nearest_distance"] > 0.6

        latest = http.get("/v1/galleries/people/clusters").json()
        assert latest["run_id"] == run.json()["run_id"] and latest["threshold"] == 0.6
        rerun = http.post("/v1/galleries/people/clusters", json={"method": "chinese_whispers"}).json()
        assert [c["face_ids"] for c in rerun["data"]] == [[biden]] and rerun["method"] == "chinese_whispers"
        assert http.delete(f"/v1/galleries/people/faces/{obama2}").status_code == 200  # erasure still per face
        kept = http.get(f"/v1/galleries/people/clusters/{pair['id']}").json()
        assert kept["face_ids"] == [obama] and kept["identity"] == "Barack Obama"


BAD = [
    ("verify: photo without a face", "verify", {"faces": ["PATTERN", "OBAMA"]}, 400, "no_face"),
    ("verify: two faces where one is expected", "verify", {"faces": ["GROUP", "OBAMA"]}, 400, "multiple_faces"),
    ("verify: unknown face id", "verify", {"faces": [{"gallery": "bad", "face_id": "999"}, "OBAMA"]}, 404, "not_found"),
    ("verify: unknown gallery", "verify", {"faces": [{"gallery": "nope", "face_id": "1"}, "OBAMA"]}, 404, None),
    ("verify: one face", "verify", {"faces": ["OBAMA"]}, 400, None),
    ("verify: bad gallery name", "verify", {"faces": [{"gallery": "../x", "face_id": "1"}, "OBAMA"]}, 400, None),
    ("verify: threshold 0", "verify", {"faces": ["OBAMA", "OBAMA"], "threshold": 0}, 400, None),
    ("identify: image and face_id", "identify", {"image": "OBAMA", "face_id": "1"}, 400, None),
    ("identify: nothing", "identify", {}, 400, None),
    ("identify: two faces", "identify", {"image": "GROUP"}, 400, "multiple_faces"),
    ("identify: no face", "identify", {"image": "PATTERN"}, 400, "no_face"),
    ("identify: unknown face id", "identify", {"face_id": "999"}, 404, "not_found"),
    ("identify: top_k 0", "identify", {"face_id": "1", "top_k": 0}, 400, None),
    ("clusters: unknown method", "clusters", {"method": "kmeans"}, 400, None),
    ("clusters: threshold as text", "clusters", {"threshold": "0.6"}, 400, None),
    ("name: blank identity", "name", {"identity": "   "}, 400, None),
    ("name: no identity", "name", {}, 400, None),
    ("name: identity too long", "name", {"identity": "x" * 201}, 400, None),
]


@pytest.fixture(scope="module")
def bad(detecting_gateway, assets_home):
    """Gallery `bad` with one face and one cluster; the placeholders of BAD as data: URIs."""
    with detecting_gateway.client() as http:
        added = http.post("/v1/galleries/bad/faces", json={"image": _uri(_sample(assets_home, "obama.jpg"))})
        assert added.status_code == 201, added.text
        cluster = http.post("/v1/galleries/bad/clusters").json()["data"][0]["id"]  # no body: the defaults
    images = {
        "OBAMA": {"image": _uri(_sample(assets_home, "obama.jpg"))},
        "GROUP": {"image": _uri(_sample(assets_home, "multi_face.jpg"))},
        "PATTERN": {"image": _uri(pattern_png(5, size=160))},
    }
    return cluster, images


@pytest.mark.assets
@pytest.mark.parametrize(("what", "route", "body", "status", "code"), BAD, ids=[b[0] for b in BAD])
def test_bad_identity_requests_are_4xx_json(detecting_gateway, bad, what, route, body, status, code):
    cluster, images = bad
    body = dict(body)
    if "faces" in body:
        body["faces"] = [images[f] if isinstance(f, str) else f for f in body["faces"]]
    if isinstance(body.get("image"), str):
        body["image"] = images[body["image"]]["image"]
    path = {
        "verify": "/v1/faces/verify",
        "identify": "/v1/galleries/bad/identify",
        "clusters": "/v1/galleries/bad/clusters",
        "name": f"/v1/galleries/bad/clusters/{cluster}/name",
    }[route]
    with detecting_gateway.client() as http:
        _error(http.post(path, json=body), status, code)
        assert http.get("/healthz").status_code == 200


@pytest.mark.assets
def test_unknown_gallery_and_cluster_are_404(detecting_gateway, bad):
    with detecting_gateway.client() as http:
        _error(http.post("/v1/galleries/nope/identify", json={"face_id": "1"}), 404, "gallery_not_found")
        _error(http.post("/v1/galleries/nope/clusters", json={}), 404, "gallery_not_found")
        _error(http.get("/v1/galleries/bad/clusters/999999"), 404, "not_found")
        _error(http.post("/v1/galleries/bad/clusters/999999/name", json={"identity": "X"}), 404, "not_found")
        _error(http.post("/v1/faces/verify", content=b"x=1", headers={"content-type": "text/plain"}), 415)


@pytest.mark.assets
def test_galleries_without_or_with_other_identity_vectors_are_409(detecting_gateway, serve_model):
    from facevlm.index.embed import get_embedder

    embedder = get_embedder(serve_model)
    legacy = Gallery.open(detecting_gateway.galleries / "legacy", model=embedder.model, dim=embedder.dim)
    ingest = Ingestor(legacy, embedder, IngestConfig(detect=False, label=False))
    (face,) = next(ingest.add_bytes([("a.png", pattern_png(9), None)])).face_ids
    legacy.close()
    other = Gallery.open(
        detecting_gateway.galleries / "other",
        model=embedder.model,
        dim=embedder.dim,
        identity=IdentitySpec("other-model", 128),
    )
    other.close()
    with detecting_gateway.client() as http:
        text = {"gallery": "legacy", "query": {"text": "a face"}}
        assert len(http.post("/v1/faces/search", json=text).json()["data"]) == 1  # FaceCLIP as before
        assert http.get("/v1/galleries/legacy").json()["identity_model"] is None
        same = {"gallery": "legacy", "query": {"face": {"face_id": str(face)}, "match": "same_person"}}
        message = _error(http.post("/v1/faces/search", json=same), 409, "identity_missing")["message"]
        assert "facevlm index reembed legacy" in message
        _error(http.post("/v1/galleries/legacy/identify", json={"face_id": str(face)}), 409, "identity_missing")
        _error(http.post("/v1/galleries/legacy/clusters", json={}), 409, "identity_missing")
        pair = {"faces": [{"gallery": "legacy", "face_id": str(face)}, {"gallery": "legacy", "face_id": str(face)}]}
        _error(http.post("/v1/faces/verify", json=pair), 409, "identity_missing")
        mismatch = _error(http.get("/v1/galleries/other"), 409, "identity_model_mismatch")["message"]
        assert "another identity model" in mismatch and str(detecting_gateway.galleries) not in mismatch
        _error(http.post("/v1/galleries/other/identify", json={"face_id": "1"}), 409, "identity_model_mismatch")
