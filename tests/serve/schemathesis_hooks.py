"""Schemathesis hooks for tests/serve/test_serve_schemathesis.py (loaded by the schemathesis CLI through
SCHEMATHESIS_HOOKS, not imported by tests): generators for the two string formats that carry images.

JSON Schema can say that a string is a base64 data: URI or that a multipart part is binary, but not
that its bytes decode as a picture of at least 8x8 pixels (the gateway states that in the descriptions).
Without these, every "valid" image the fuzzer draws is noise that the server rightly refuses."""

from __future__ import annotations

import base64
import io
import os

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


# /v1/chat/completions allows at most chat.max_images images in all messages together, which a JSON schema
# cannot count across an array of messages (the spec says it in words; the gateway answers 400
# too_many_images). Schema-valid cases over that count are not valid requests, so they are not sent as such.
CHAT_MAX_IMAGES = int(os.environ.get("FACEVLM_CHAT_MAX_IMAGES", "0") or 0)


def _chat_images(body: object) -> int:
    messages = body.get("messages") if isinstance(body, dict) else None
    return sum(
        1
        for msg in (messages if isinstance(messages, list) else [])
        if isinstance(msg, dict) and isinstance(msg.get("content"), list)
        for part in msg["content"]
        if isinstance(part, dict) and part.get("type") == "image_url"
    )


@schemathesis.hook
def filter_case(context, case) -> bool:
    if not CHAT_MAX_IMAGES or case.operation.path != "/v1/chat/completions":
        return True
    positive = case.meta is None or case.meta.generation.mode.is_positive
    return not positive or _chat_images(case.body) <= CHAT_MAX_IMAGES
