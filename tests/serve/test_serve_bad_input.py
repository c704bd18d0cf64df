"""Hostile and unusual input: every bad request gets a 4xx OpenAI error JSON and the server keeps
serving; unusual but valid images (CMYK, RGBA, palette, 16-bit, EXIF-rotated) are decoded correctly."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from fakes import pattern_image, pattern_png
from PIL import Image

from facevlm.image import to_data_uri


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height over a tiny IDAT: a decompression bomb that costs
    nothing to build (never allocate the real thing)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


GOOD = pattern_png(7)
BAD_IMAGES = {
    "corrupt": b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8,
    "truncated": GOOD[: len(GOOD) // 2],
    "non_image": b"%PDF-1.4 this is not an image at all",
    "bomb_20000x20000": png_header_only(20000, 20000),
    "bomb_3000x3000_over_server_limit": png_header_only(3000, 3000),
    "tiny_1x1": png(Image.new("RGB", (1, 1))),
}
EXPECT = {
    "corrupt": 400,
    "truncated": 400,
    "non_image": 415,
    "bomb_20000x20000": 413,
    "bomb_3000x3000_over_server_limit": 413,
    "tiny_1x1": 400,
}


def _is_error(res, status: int) -> None:
    assert res.status_code == status, res.text
    body = res.json()["error"]
    assert set(body) == {"message", "type", "param", "code"} and body["message"] and "\n" not in body["message"]


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_bad_images_everywhere(gateway, name):
    data, status = BAD_IMAGES[name], EXPECT[name]
    with gateway.client() as http:
        _is_error(http.post("/v1/galleries/bad/faces", files={"file": ("x.png", data, "image/png")}), status)
        _is_error(http.post("/v1/galleries/bad/faces", json={"image": to_data_uri(data, "image/png")}), status)
        _is_error(
            http.post("/v1/embeddings", json={"model": "facevlm-clip-tiny", "input": [to_data_uri(data)]}), status
        )
        _is_error(
            http.post(
                "/v1/faces/search",
                files={"image": ("q.png", data, "image/png")},
                data={"arguments": '{"query": {"face": {"image": "image_1"}}}'},
            ),
            status,
        )
        assert http.get("/healthz").status_code == 200
        assert not (gateway.galleries / "bad").exists() or http.get("/v1/galleries/bad").json()["faces"] == 0


BAD_REQUESTS = [
    ("empty body", "post", "/v1/embeddings", {"content": b"", "headers": {"content-type": "application/json"}}, 400),
    (
        "malformed json",
        "post",
        "/v1/embeddings",
        {"content": b'{"model": "x", "input": [', "headers": {"content-type": "application/json"}},
        400,
    ),
    ("input wrong type", "post", "/v1/embeddings", {"json": {"model": "facevlm-clip-tiny", "input": 42}}, 400),
    ("token arrays", "post", "/v1/embeddings", {"json": {"model": "facevlm-clip-tiny", "input": [[1, 2, 3]]}}, 400),
    (
        "unknown field",
        "post",
        "/v1/embeddings",
        {"json": {"model": "facevlm-clip-tiny", "input": "a", "temperature": 1}},
        400,
    ),
    ("empty input list", "post", "/v1/embeddings", {"json": {"model": "facevlm-clip-tiny", "input": []}}, 400),
    ("empty string", "post", "/v1/embeddings", {"json": {"model": "facevlm-clip-tiny", "input": ""}}, 400),
    (
        "wrong dimensions",
        "post",
        "/v1/embeddings",
        {"json": {"model": "facevlm-clip-tiny", "input": "a", "dimensions": 7}},
        400,
    ),
    (
        "bad base64",
        "post",
        "/v1/embeddings",
        {"json": {"model": "facevlm-clip-tiny", "input": "data:image/png;base64,@@@"}},
        400,
    ),
    (
        "search empty body",
        "post",
        "/v1/faces/search",
        {"content": b"", "headers": {"content-type": "application/json"}},
        400,
    ),
    (
        "search malformed json",
        "post",
        "/v1/faces/search",
        {"content": b"{query", "headers": {"content-type": "application/json"}},
        400,
    ),
    ("search json array", "post", "/v1/faces/search", {"json": [1, 2]}, 400),
    ("search wrong types", "post", "/v1/faces/search", {"json": {"query": {"text": 5}, "top_k": "ten"}}, 400),
    ("search top_k range", "post", "/v1/faces/search", {"json": {"query": {"text": "a"}, "top_k": 0}}, 400),
    (
        "search unknown attribute",
        "post",
        "/v1/faces/search",
        {"json": {"query": {"text": "a"}, "filters": {"wings": True}}},
        400,
    ),
    (
        "search sensitive filter",
        "post",
        "/v1/faces/search",
        {"json": {"query": {"text": "a"}, "filters": {"skin_tone": "3"}}},
        400,
    ),
    ("search missing gallery", "post", "/v1/faces/search", {"json": {"gallery": "nope", "query": {"text": "a"}}}, 404),
    ("search image not uploaded", "post", "/v1/faces/search", {"json": {"query": {"face": {"image": "image_2"}}}}, 400),
    (
        "search text content type",
        "post",
        "/v1/faces/search",
        {"content": b"hello", "headers": {"content-type": "text/plain"}},
        415,
    ),
    ("add no image", "post", "/v1/galleries/x/faces", {"json": {"identity": "a"}}, 400),
    ("add bad gallery name", "post", "/v1/galleries/b@d!/faces", {"json": {"image": to_data_uri(GOOD)}}, 400),
    ("add path traversal", "post", "/v1/galleries/..%2Fetc/faces", {"json": {"image": to_data_uri(GOOD)}}, 404),
    (
        "add detect not bool",
        "post",
        "/v1/galleries/x/faces",
        {"files": {"file": ("a.png", GOOD)}, "data": {"detect": "maybe"}},
        400,
    ),
    (
        "body too large",
        "post",
        "/v1/embeddings",
        {"content": b"x" * 4_100_000, "headers": {"content-type": "application/json"}},
        413,
    ),
    ("list bad cursor", "get", "/v1/galleries/x/faces?after=abc", {}, 400),
    ("delete bad id", "delete", "/v1/galleries/x/faces/abc", {}, 400),
    ("unknown route", "get", "/v1/nothing", {}, 404),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests(gateway, case):
    _, method, path, kwargs, status = case
    with gateway.client() as http:
        _is_error(http.request(method.upper(), path, **kwargs), status)
        assert http.get("/healthz").status_code == 200


def test_unusual_valid_images_are_normalised(gateway):
    base = pattern_image(11, size=64)
    wide = base.resize((60, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    variants = {
        "cmyk.jpg": jpeg(base.convert("CMYK")),
        "rgba.png": png(base.convert("RGBA")),
        "palette.png": png(base.convert("P")),
        "grey16.png": png(base.convert("L").convert("I;16")),
        "exif_rotated.jpg": jpeg(wide, exif=exif.tobytes()),
    }
    with gateway.client() as http:
        files = [("file", (name, data, "application/octet-stream")) for name, data in variants.items()]
        res = http.post("/v1/galleries/unusual/faces", files=files)
        assert res.status_code == 201, res.text
        faces = {f["source"]: f for f in res.json()["data"]}
        assert set(faces) == set(variants)
        crop = Image.open(io.BytesIO(http.get(faces["exif_rotated.jpg"]["crop_url"]).content))
        assert crop.size == (40, 60)  # upright: EXIF orientation applied before storing and embedding
        for face in faces.values():
            assert Image.open(io.BytesIO(http.get(face["crop_url"]).content)).mode == "RGB"
