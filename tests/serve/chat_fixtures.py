"""Chat gateways for the chat tests: the real app (create_app) served by uvicorn on a loopback port in a
thread of the test process, so a test can hand it a chat backend of its own (a scripted one, at the
backend interface only) and the official openai client talks to it over HTTP exactly as to any server.

`ScriptedBackend` is that backend: a ChatBackend whose replies the test writes (a face_search call, say),
since the tiny VLM trained at test time cannot be relied on to emit one; it records each Generation it is
asked for. Fixtures: `chat_gateway` (the tiny FaceVLM in process, base + LoRA adapter `faces`),
`scripted_gateway` (ScriptedBackend, face detection on, for the search tests). A test module imports a
fixture as `chat_gateway_fixture` (the name pytest registers is the fixture's `name`).
"""

from __future__ import annotations

import asyncio
import base64
import io
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import draw_face

from facevlm.serve.chat_backends import ChatBackend, Completion, Generation
from facevlm.serve.config import ChatConfig, LimitsConfig, RateLimitConfig, ServeConfig
from facevlm.vlm.inference import Reply

API_KEY = "sk-test-chat"
CLIP_ID = "facevlm-clip-tiny"
TINY_ID, ADAPTER_ID = "tiny-vlm", "faces"
SCRIPTED_ID = "scripted-vlm"
LIMITS = LimitsConfig(max_request_bytes=4_000_000, max_image_bytes=2_000_000, max_image_pixels=4_000_000)


@dataclass
class Live:
    url: str
    app: Any
    log: list[str] = field(default_factory=list)  # error log records of the server

    def client(self, key: str | None = API_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def openai(self, key: str = API_KEY, **kwargs: Any) -> Any:
        from openai import OpenAI

        return OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=120, **kwargs)


class _Errors(list):
    def write(self, text: str) -> None:
        self.append(text)


@contextmanager
def live_gateway(cfg: ServeConfig, chat_backend: Any = None) -> Iterator[Live]:
    """The app on a free loopback port (uvicorn in a thread, lifespan on); stopped when the block ends."""
    import logging

    import uvicorn

    from facevlm.serve.app import create_app

    # The socket is bound here and handed to uvicorn, so the port stays ours while the lifespan runs: a
    # managed vLLM engine started there picks a free port too, and could otherwise take this one.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(cfg, chat_backend=chat_backend)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    errors = _Errors()
    handler = logging.StreamHandler(errors)
    handler.setLevel(logging.ERROR)
    logging.getLogger().addHandler(handler)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 600  # a managed engine starts in the lifespan
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail(f"gateway did not start: {''.join(errors)[-3000:]}")
            time.sleep(0.1)
        yield Live(f"http://127.0.0.1:{port}", app, errors)
    finally:
        server.should_exit = True
        thread.join(120)
        sock.close()
        logging.getLogger().removeHandler(handler)


def serve_config(home: Path, clip: str, chat: ChatConfig, **overrides: Any) -> ServeConfig:
    values: dict[str, Any] = {
        "model": clip,
        "served_model_name": CLIP_ID,
        "galleries_dir": str(home / "galleries"),
        "detect": False,
        "label": False,
        "api_keys": [API_KEY],
        "log_level": "warning",
        "limits": LIMITS,
        "chat": chat,
        "rate_limit": RateLimitConfig(),
    }
    return ServeConfig(**{**values, **overrides})


def tiny_chat(tiny_vlm: dict[str, Path], **overrides: Any) -> ChatConfig:
    """The tiny FaceVLM's sft stage as base + LoRA: `tiny-vlm` is the base, `faces` its adapter."""
    values: dict[str, Any] = {
        "model": str(tiny_vlm["sft"] / "base"),
        "served_model_name": TINY_ID,
        "adapters": {ADAPTER_ID: str(tiny_vlm["sft"] / "adapter")},
        "backend": "in_process",
        "crop": "never",
        "max_messages": 6,
        "max_images": 2,
        "max_text_chars": 400,
        "max_tokens": 24,
        "default_max_tokens": 8,
        "max_n": 3,
        "max_model_len": 1024,
        # These tests check the model's own answers through the API (the adapter changes them, stop strings
        # cut them...); the competence gate has its own tests (test_chat_competence.py).
        "unsure_below_majority": False,
    }
    return ChatConfig(**{**values, **overrides})


class ScriptedBackend(ChatBackend):
    """Answers with the replies the test queued (the last one again once they run out); records requests."""

    kind = "scripted"

    def __init__(self, delay: float = 0.0) -> None:
        self.replies: list[Reply] = [Reply("scripted answer")]
        self.seen: list[Generation] = []
        self.delay = delay  # seconds each answer takes (on the event loop's clock: asyncio.sleep)

    def script(self, *replies: Reply) -> None:
        self.replies = list(replies)

    async def complete(self, gen: Generation) -> Completion:
        self.seen.append(gen)
        await asyncio.sleep(self.delay)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        replies = [Reply(reply.text, list(reply.tool_calls), 11, 5, reply.finish_reason) for _ in range(gen.n)]
        return Completion(replies, 11, 5 * gen.n)


def search_call(arguments: dict[str, Any], text: str | None = None) -> Reply:
    """A reply of the model that is one face_search call, as FaceChat.generate and vLLM's parser give it."""
    import json

    function = {"name": "face_search", "arguments": json.dumps(arguments)}
    call = {"id": "call_scripted", "type": "function", "function": function}
    return Reply(text, [call], 0, 0, "tool_calls")


def face_uri(seed: int = 3, smiling: bool = True) -> str:
    buf = io.BytesIO()
    draw_face(True, smiling, "black", random.Random(seed)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def data_uri(data: bytes) -> str:
    mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def user(text: str, *images: str) -> dict[str, Any]:
    parts = [{"type": "image_url", "image_url": {"url": url}} for url in images]
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}


@pytest.fixture(scope="session", name="chat_gateway")
def chat_gateway_fixture(tmp_path_factory, serve_model, tiny_vlm, assets_home) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("chat")
    with live_gateway(serve_config(home, serve_model, tiny_chat(tiny_vlm))) as live:
        yield live


@pytest.fixture(scope="session", name="scripted_backend")
def scripted_backend_fixture() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture(scope="session", name="scripted_gateway")
def scripted_gateway_fixture(tmp_path_factory, serve_model, assets_home, scripted_backend) -> Iterator[Live]:
    """Face detection on (real photos get their faces and identity vectors); the scripted chat model."""
    home = tmp_path_factory.mktemp("chat-scripted")
    chat = ChatConfig(model=SCRIPTED_ID, backend="in_process", max_images=3, timeout_s=30)
    with live_gateway(serve_config(home, serve_model, chat, detect=True), scripted_backend) as live:
        yield live
