"""The gateway end to end: OpenAI client embeddings, add -> search -> erase over HTTP, API keys."""

from __future__ import annotations

import base64
import io

import numpy as np
import openai
import pytest
from fakes import pattern_png
from PIL import Image

from facevlm.image import to_data_uri


def test_openai_client_gets_embeddings(gateway, local_embedder):
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key)
    texts = ["a smiling person with glasses", "a neutral face"]
    res = client.embeddings.create(model="facevlm-clip-tiny", input=texts)  # the client asks for base64
    got = np.array([d.embedding for d in res.data], np.float32)
    assert res.model == "facevlm-clip-tiny" and [d.index for d in res.data] == [0, 1]
    assert got.shape == (2, local_embedder.dim)
    np.testing.assert_allclose(got, local_embedder.texts(texts), atol=1e-5)
    assert res.usage.prompt_tokens == res.usage.total_tokens == local_embedder.count_tokens(texts) > 0
    floats = client.embeddings.create(model="facevlm-clip-tiny", input=texts[0], encoding_format="float")
    np.testing.assert_allclose(floats.data[0].embedding, got[0], atol=1e-6)
    image = client.embeddings.create(model="facevlm-clip-tiny", input=[to_data_uri(pattern_png(3), "image/png")])
    np.testing.assert_allclose(
        image.data[0].embedding,
        local_embedder.images([Image.open(io.BytesIO(pattern_png(3))).convert("RGB")])[0],
        atol=1e-5,
    )
    assert [m.id for m in client.models.list().data] == ["facevlm-clip-tiny"]
    with pytest.raises(openai.NotFoundError, match="not served"):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="wrong").embeddings.create(
            model="facevlm-clip-tiny", input="x"
        )


def test_add_search_erase_over_http(gateway):
    with gateway.client() as http:
        files = [("file", (f"p{i}.png", pattern_png(i), "image/png")) for i in range(6)]
        added = http.post("/v1/galleries/people/faces", files=files, data={"identity": "alex"})
        assert added.status_code == 201, added.text
        faces = added.json()["data"]
        assert len(faces) == 6 and all(f["identity"] == "alex" for f in faces)
        more = http.post("/v1/galleries/people/faces", json={"image": to_data_uri(pattern_png(50), "image/png")})
        assert more.status_code == 201 and len(more.json()["data"]) == 1
        target = faces[2]

        hits = http.post(
            "/v1/faces/search",
            files={"image": ("q.png", pattern_png(2), "image/png")},
            data={"arguments": '{"gallery": "people", "query": {"face": {"image": "image_1"}}, "top_k": 3}'},
        )
        assert hits.status_code == 200, hits.text
        assert hits.json()["data"][0]["id"] == target["id"] and hits.json()["data"][0]["score"] > 0.999
        by_uri = http.post(
            "/v1/faces/search",
            json={
                "gallery": "people",
                "query": {"face": {"image": to_data_uri(pattern_png(2), "image/png")}, "match": "look_alike"},
            },
        )
        assert by_uri.json()["data"][0]["id"] == target["id"]
        text = http.post(
            "/v1/faces/search", json={"gallery": "people", "query": {"text": "a smiling face"}, "top_k": 100}
        )
        assert len(text.json()["data"]) == 7
        composed = http.post(
            "/v1/faces/search",
            json={"gallery": "people", "query": {"face": {"face_id": target["id"]}, "edit": "smiling"}, "top_k": 3},
        )
        assert composed.status_code == 200 and target["id"] not in [h["id"] for h in composed.json()["data"]]

        thumb = http.get(target["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(thumb.content)).size[0] <= 128
        page = http.get("/v1/galleries/people/faces", params={"limit": 4})
        assert page.json()["has_more"] is True and len(page.json()["data"]) == 4
        rest = http.get("/v1/galleries/people/faces", params={"limit": 4, "after": page.json()["last_id"]})
        assert rest.json()["has_more"] is False and len(rest.json()["data"]) == 3

        def on_disk(kind: str) -> int:
            return sum(1 for p in (gateway.galleries / "people" / kind).rglob("*.jpg"))

        before = (on_disk("crops"), on_disk("thumbs"))
        row = http.get(f"/v1/galleries/people/faces/{target['id']}").json()
        assert row["id"] == target["id"]
        erased = http.delete(f"/v1/galleries/people/faces/{target['id']}")
        assert erased.status_code == 200 and erased.json()["deleted"] is True
        assert http.get(f"/v1/galleries/people/faces/{target['id']}").status_code == 404
        assert http.get(target["thumbnail_url"]).status_code == 404
        again = http.post(
            "/v1/faces/search",
            json={
                "gallery": "people",
                "query": {"face": {"image": to_data_uri(pattern_png(2), "image/png")}},
                "top_k": 10,
            },
        )
        assert target["id"] not in [h["id"] for h in again.json()["data"]]
        assert (on_disk("crops"), on_disk("thumbs")) == (before[0] - 1, before[1] - 1)
        image_id = faces[0]["image_id"]
        assert http.delete(f"/v1/galleries/people/images/{image_id}").json()["ids"] == [faces[0]["id"]]
        stats = http.get("/v1/galleries/people").json()
        assert stats["faces"] == stats["vectors"] == 5 and stats["images"] == 5


def test_api_key_and_openapi(gateway):
    with gateway.client(key=None) as anon:
        res = anon.get("/v1/models")
        assert res.status_code == 401 and res.json()["error"]["code"] == "invalid_api_key"
        assert anon.get("/healthz").json()["status"] == "ok"
        spec = anon.get("/openapi.json").json()
        assert {"/v1/embeddings", "/v1/faces/search", "/v1/galleries/{name}/faces"} <= set(spec["paths"])


def test_base64_matches_float(gateway):
    with gateway.client() as http:
        a = http.post(
            "/v1/embeddings", json={"model": "facevlm-clip-tiny", "input": "x y", "encoding_format": "base64"}
        )
        b = http.post("/v1/embeddings", json={"model": "facevlm-clip-tiny", "input": "x y"})
        vec = np.frombuffer(base64.b64decode(a.json()["data"][0]["embedding"]), "<f4")
        np.testing.assert_allclose(vec, b.json()["data"][0]["embedding"], atol=1e-7)
