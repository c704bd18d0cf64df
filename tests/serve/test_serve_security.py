"""Gallery names are names, never paths; no response carries a server path; DELETE erases a gallery."""

from __future__ import annotations

import pytest
from fakes import pattern_png

from facevlm.image import to_data_uri
from facevlm.index.names import is_gallery_name

# path segments exactly as sent (percent-encoded where a client could not send them raw)
HOSTILE = {
    "dotdot": "%2E%2E",
    "dot": "%2E",
    "dotdot-slash": "..%2F",
    "dotdot-etc": "..%2Fetc",
    "slash-etc": "%2Fetc",
    "absolute": "%2Fetc%2Fpasswd",
    "backslashes": "..%5C..",
    "nul": "%00",
    "nul-suffix": "people%00",
    "newline-suffix": "people%0A",
    "too-long": "a" * 65,
    "fullwidth-dots": "%EF%BC%8E%EF%BC%8E",
    "cyrillic-a": "%D0%B0",
    "uppercase": "People",
    "tilde": "~",
    "tilde-user": "~root",
    "leading-dash": "-x",
}
GALLERY_FILES = {"gallery.json", "meta.sqlite", "images", "crops", "thumbs", "vectors.faiss"}


def _is_error(res, low: int = 400, high: int = 499) -> None:
    assert low <= res.status_code <= high, (res.request.url, res.status_code, res.text)
    assert set(res.json()["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("segment", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_gallery_names_are_refused_and_write_nothing(fresh_gateway, segment):
    image = {"image": to_data_uri(pattern_png(1), "image/png")}
    with fresh_gateway.client() as http:
        _is_error(http.get(f"/v1/galleries/{segment}"))
        _is_error(http.get(f"/v1/galleries/{segment}/faces"))
        _is_error(http.post(f"/v1/galleries/{segment}/faces", json=image))
        _is_error(http.post(f"/v1/galleries/{segment}/faces", files={"file": ("a.png", pattern_png(2), "image/png")}))
        _is_error(http.delete(f"/v1/galleries/{segment}"))
        _is_error(http.get(f"/v1/galleries/{segment}/faces/1/crop"))
        assert http.get("/healthz").status_code == 200
    root = fresh_gateway.galleries.parent  # holds the galleries root, $FACEVLM_HOME, the recipe and the log
    strays = [
        p
        for p in root.rglob("*")
        if p.name in GALLERY_FILES
        and not (p.parent.parent == fresh_gateway.galleries and is_gallery_name(p.parent.name))
    ]
    assert strays == []
    assert not fresh_gateway.galleries.exists() or list(fresh_gateway.galleries.iterdir()) == []


@pytest.mark.parametrize("name", ["..", ".", "../x", "/etc", "a" * 65, "People", "\uff0e\uff0e", "\u0430", "x\n"])
def test_search_call_gallery_must_be_a_name(gateway, name):
    with gateway.client() as http:
        res = http.post("/v1/faces/search", json={"gallery": name, "query": {"text": "a face"}})
        _is_error(res, 400, 400)


def test_delete_gallery_erases_everything_and_a_new_one_starts_empty(gateway):
    with gateway.client() as http:
        files = [("file", (f"d{i}.png", pattern_png(300 + i), "image/png")) for i in range(3)]
        assert http.post("/v1/galleries/doomed/faces", files=files).status_code == 201
        face = http.get("/v1/galleries/doomed/faces").json()["data"][0]
        assert (gateway.galleries / "doomed" / "gallery.json").is_file()
        res = http.delete("/v1/galleries/doomed")
        assert res.status_code == 200, res.text
        assert res.json() == {"id": "doomed", "object": "gallery.deleted", "deleted": True, "faces": 3}
        assert not (gateway.galleries / "doomed").exists()
        assert [p.name for p in gateway.galleries.iterdir() if "doomed" in p.name] == []  # no tombstone left
        _is_error(http.get("/v1/galleries/doomed"), 404, 404)
        _is_error(http.get(face["thumbnail_url"]), 404, 404)
        _is_error(http.delete("/v1/galleries/doomed"), 404, 404)
        assert "doomed" not in http.get("/healthz").json()["galleries"]
        again = http.post("/v1/galleries/doomed/faces", files=[files[0]])
        assert again.status_code == 201 and again.json()["images"][0]["status"] == "added"  # not "skipped"
        stats = http.get("/v1/galleries/doomed").json()
        assert stats["faces"] == stats["vectors"] == stats["images"] == 1
        assert http.delete("/v1/galleries/doomed").json()["faces"] == 1


def test_no_response_carries_a_server_path(gateway, local_embedder):
    from facevlm.index.store import Gallery

    busy = Gallery.open(gateway.galleries / "busy", model=local_embedder.model, dim=local_embedder.dim)
    other = Gallery.open(gateway.galleries / "other-model", model="another-model", dim=local_embedder.dim)
    other.close()
    try:
        with gateway.client() as http:
            added = http.post("/v1/galleries/paths/faces", files={"file": ("p.png", pattern_png(400), "image/png")})
            face = added.json()["data"][0]
            http.get("/v1/galleries/paths")
            http.get("/v1/galleries/paths/faces")
            http.get(f"/v1/galleries/paths/faces/{face['id']}")
            http.post("/v1/faces/search", json={"gallery": "paths", "query": {"text": "a face"}})
            _is_error(http.get("/v1/galleries/busy"), 409, 409)  # our lock: the server must not open it
            _is_error(http.get("/v1/galleries/other-model/faces"), 409, 409)
            _is_error(http.get("/v1/galleries/%2E%2E"))
            http.get("/healthz")
            http.get("/openapi.json")
    finally:
        busy.close()
    secrets = {str(gateway.galleries), str(gateway.home), str(gateway.galleries.parent), str(gateway.model)}
    leaks = [(request, body[:200]) for request, body in gateway.responses if any(s in body for s in secrets)]
    assert len(gateway.responses) > 20 and leaks == []
