"""Schemathesis hooks for tests/serve/test_serve_schemathesis.py (loaded by the schemathesis CLI through
SCHEMATHESIS_HOOKS, not imported by tests): generators for the two string formats that carry images.

JSON Schema can say that a string is a base64 data: URI or that a multipart part is binary, but not
that its bytes decode as a picture of at least 8x8 pixels (the gateway states that in the descriptions).
Without these, every "valid" image the fuzzer draws is noise that the server rightly refuses."""

from __future__ import annotations

import base64
import io

import schemathesis
from hypothesis import strategies as st
from PIL import Image


@st.composite
def _image_bytes(draw: st.DrawFn) -> bytes:
    width, height = draw(st.integers(8, 40)), draw(st.integers(8, 40))
    colour = tuple(draw(st.integers(0, 255)) for _ in range(3))
    image = Image.new("RGB", (width, height), colour)
    image.putpixel((draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))), (255 - colour[0], 0, 0))
    buf = io.BytesIO()
    image.save(buf, format=draw(st.sampled_from(["PNG", "JPEG"])))
    return buf.getvalue()


def _data_uri(data: bytes) -> str:
    mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


schemathesis.openapi.format("image-data-uri", _image_bytes().map(_data_uri))
schemathesis.openapi.format("binary", _image_bytes())
