"""Limits and bad input on /v1/chat/completions: every mistake a client can make answers OpenAI's error JSON
with a 4xx status (never a 5xx), per-key rate limits answer 429 with Retry-After, a slow answer 504, and
the in-process model runs off the event loop, one generation at a time, with a bounded queue."""

from __future__ import annotations

import asyncio
import base64
import io
import threading

import openai
import pytest
from chat_fixtures import (
    API_KEY,
    SCRIPTED_ID,
    TINY_ID,
    ScriptedBackend,
    chat_gateway_fixture,  # noqa: F401 (fixture, by its own name)
    face_uri,
    live_gateway,
    serve_config,
    tiny_chat,
    user,
)
from PIL import Image
from test_serve_bad_input import png_header_only

from facevlm.errors import FacevlmError
from facevlm.serve.chat_backends import Generation, InProcessBackend
from facevlm.serve.config import ChatConfig, RateLimitConfig
from facevlm.serve.ratelimit import TokenBucket


def _png(size: tuple[int, int] = (32, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 120, 90)).save(buf, format="PNG")
    return buf.getvalue()


def _uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _body(**overrides) -> dict:
    return {"model": TINY_ID, "messages": [user("Is this person smiling?", face_uri())], "max_tokens": 2, **overrides}


def _image(url: str) -> dict:
    return _body(messages=[user("What is this?", url)])


BAD_, THREE = "invalid_request", "too_many_images"
LONG = "a face " * 57  # 399 characters: the longest text allowed
BAD = {
    "no messages": (_body(messages=[]), 400, "invalid_request"),
    "too many messages": (_body(messages=[{"role": "user", "content": "hi"}] * 7), 400, "invalid_request"),
    "too many images": (_body(messages=[user("a", face_uri(1), face_uri(2)), user("b", face_uri(3))]), 400, THREE),
    "broken base64": (_image("data:image/png;base64,@@@@not-base64@@@@"), 400, "invalid_image"),
    "base64 of no image": (_image(_uri(b"hello, this is not an image at all")), 415, "unsupported_media_type"),
    "truncated png": (_image(_uri(_png()[:60])), 400, "invalid_image"),
    "declared as text": (_image(_uri(_png(), "text/plain")), 400, "invalid_image"),
    "too small": (_image(_uri(_png((4, 4)))), 400, "invalid_image"),
    "pixel bomb": (_image(_uri(png_header_only(20000, 20000))), 413, "image_too_large"),
    "http url": (_image("https://example.com/face.jpg"), 400, "unsupported_image_url"),
    "file url": (_image("file:///etc/passwd"), 400, "unsupported_image_url"),
    "bad face ref": (_image("facevlm://Family/faces/1"), 400, "unsupported_image_url"),
    "no such gallery": (_image("facevlm://nobody/faces/1"), 404, "gallery_not_found"),
    "unknown model": (_body(model="gpt-4o"), 404, "model_not_found"),
    "unknown adapter": (_body(model="faces-v2"), 404, "model_not_found"),
    "wrong role": (_body(messages=[{"role": "bot", "content": "hi"}]), 400, "invalid_request"),
    "no role": (_body(messages=[{"content": "hi"}]), 400, "invalid_request"),
    "null user content": (_body(messages=[{"role": "user", "content": None}]), 400, "invalid_request"),
    "empty user parts": (_body(messages=[{"role": "user", "content": []}]), 400, "invalid_request"),
    "image in system": (_body(messages=[{"role": "system", "content": user("x", face_uri())["content"]}]), 400, BAD_),
    "tool without id": (_body(messages=[{"role": "tool", "content": "{}"}]), 400, "invalid_request"),
    "text too long": (_body(messages=[{"role": "user", "content": LONG + "xx"}]), 400, "invalid_request"),
    "max_tokens over cap": (_body(max_tokens=25), 400, "invalid_request"),
    "zero completion tokens": (_body(max_completion_tokens=0), 400, "invalid_request"),
    "n over cap": (_body(n=4), 400, "invalid_request"),
    "temperature": (_body(temperature=2.5), 400, "invalid_request"),
    "top_p zero": (_body(top_p=0), 400, "invalid_request"),
    "five stops": (_body(stop=list("abcde")), 400, "invalid_request"),
    "empty stop": (_body(stop=""), 400, "invalid_request"),
    "seed as text": (_body(seed="7"), 400, "invalid_request"),
    "seed over 2**53": (_body(seed=2**53 + 1), 400, "invalid_request"),
    "unknown field": (_body(logit_bias={"1": 2}), 400, "invalid_request"),
    "stream as text": (_body(stream="yes"), 400, "invalid_request"),
    "bad tool name": (_body(tools=[{"type": "function", "function": {"name": "no spaces"}}]), 400, "invalid_request"),
    "gallery path": (_body(facevlm={"gallery": "../etc"}), 400, "invalid_request"),
    "context too long": (
        _body(messages=[{"role": "user", "content": [{"type": "text", "text": LONG}] * 8}] * 6, max_tokens=24),
        400,
        "context_length_exceeded",
    ),
}


def _error(res, status: int, code: str | None) -> dict:
    assert res.status_code == status, res.text[:500]
    error = res.json()["error"]
    assert error["message"] and "\n" not in error["message"] and error["type"], error
    assert code is None or error["code"] == code, error
    return error


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_a_4xx_error_json(chat_gateway, case: str) -> None:
    body, status, code = BAD[case]
    with chat_gateway.client() as http:
        _error(http.post("/v1/chat/completions", json=body), status, code)
        if "stream" not in body:  # the same refusal before a stream starts
            _error(http.post("/v1/chat/completions", json={**body, "stream": True}), status, code)


def test_bodies_that_are_not_a_chat_request(chat_gateway) -> None:
    with chat_gateway.client() as http:
        _error(http.post("/v1/chat/completions", content=b"{not json"), 400, "invalid_request")
        _error(http.post("/v1/chat/completions", json=[_body()]), 400, "invalid_request")
        _error(http.post("/v1/chat/completions", content=b"", headers={"Content-Type": "application/json"}), 400, None)
        _error(http.post("/v1/chat/completions", content=b"x", headers={"Content-Type": "text/plain"}), 415, None)
        huge = {"model": TINY_ID, "messages": [{"role": "user", "content": "x" * 5_000_000}]}
        _error(http.post("/v1/chat/completions", json=huge), 413, "request_too_large")
        _error(http.get("/v1/chat/completions"), 405, "method_not_allowed")
    for key in (None, "sk-wrong"):
        with chat_gateway.client(key) as http:
            _error(http.post("/v1/chat/completions", json=_body()), 401, "invalid_api_key")


def test_the_openai_client_surfaces_the_messages(chat_gateway) -> None:
    client = chat_gateway.openai()
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=TINY_ID, messages=[user("Who?", "http://example.com/a.jpg")])
    assert err.value.body["code"] == "unsupported_image_url" and "not fetched" in err.value.body["message"]
    with pytest.raises(openai.AuthenticationError):
        chat_gateway.openai(key="sk-wrong").chat.completions.create(model=TINY_ID, messages=[user("Hi")])


def test_the_suite_left_no_traceback(chat_gateway) -> None:
    with chat_gateway.client() as http:
        for body, _, _ in BAD.values():
            assert http.post("/v1/chat/completions", json=body).status_code < 500
    assert not [line for line in chat_gateway.log if "Traceback" in line or "unhandled" in line]


@pytest.fixture(scope="module")
def limited(tmp_path_factory, serve_model, assets_home):
    """A gateway with per-key rate limits and a 1 s answer budget; its scripted model takes `delay` s."""
    backend = ScriptedBackend()
    chat = ChatConfig(model=SCRIPTED_ID, backend="in_process", timeout_s=1.0)
    limits = RateLimitConfig(requests_per_minute=600, chat_requests_per_minute=2, chat_burst=2)
    cfg = serve_config(tmp_path_factory.mktemp("limited"), serve_model, chat, rate_limit=limits)
    cfg.api_keys.extend(["sk-second", "sk-third"])
    with live_gateway(cfg, backend) as live:
        yield live, backend


def test_rate_limits_are_per_key(limited) -> None:
    gw, _ = limited
    body = {"model": SCRIPTED_ID, "messages": [user("Hi")]}
    with gw.client() as http:
        assert [http.post("/v1/chat/completions", json=body).status_code for _ in range(2)] == [200, 200]
        refused = http.post("/v1/chat/completions", json=body)
        _error(refused, 429, "rate_limit_exceeded")
        assert int(refused.headers["Retry-After"]) >= 1
        assert http.get("/v1/models").status_code == 200  # the chat bucket is the chat route's only
        assert http.get("/healthz").status_code == 200
    with gw.client("sk-second") as http:
        assert http.post("/v1/chat/completions", json=body).status_code == 200
    with gw.client() as http:  # the limit is documented where it applies
        spec = http.get("/openapi.json").json()
    assert "429" in spec["paths"]["/v1/models"]["get"]["responses"]
    assert "429" in spec["paths"]["/v1/chat/completions"]["post"]["responses"]


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(per_minute=6, burst=2, clock=lambda: now[0])
    for _ in range(2):
        assert bucket.wait("k") == 0
        bucket.take("k")
    assert bucket.wait("k") == pytest.approx(10.0)  # one token per 10 s
    now[0] = 5.0
    assert bucket.wait("k") == pytest.approx(5.0) and bucket.wait("other") == 0
    now[0] = 10.0
    assert bucket.wait("k") == 0


def test_a_slow_answer_is_504_and_health_stays_up(limited) -> None:
    gw, backend = limited
    backend.delay = 3.0
    body = {"model": SCRIPTED_ID, "messages": [user("Hi")]}
    try:
        with gw.client("sk-third") as http:
            _error(http.post("/v1/chat/completions", json=body), 504, "timeout")
            _error(http.post("/v1/chat/completions", json={**body, "stream": True}), 504, "timeout")
    finally:
        backend.delay = 0.0


def test_in_process_model_runs_in_its_own_thread_with_a_bounded_queue(tiny_vlm) -> None:
    backend = InProcessBackend(tiny_chat(tiny_vlm, max_queue=1))
    gen = Generation(model=TINY_ID, messages=[{"role": "user", "content": "Hello"}], max_tokens=3)

    async def scenario() -> None:
        gate = threading.Event()
        backend.executor.submit(gate.wait)  # the model's thread is busy
        first = asyncio.create_task(backend.complete(gen))
        await asyncio.sleep(0.05)
        with pytest.raises(FacevlmError) as busy:  # one request waits already: the queue is full
            await backend.complete(gen)
        assert busy.value.status_code == 429 and busy.value.code == "server_busy"
        assert busy.value.headers == {"Retry-After": "1"}  # what the gateway's error handler sends
        ticks = 0
        for _ in range(5):  # the event loop runs on while the model's thread is occupied
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 5 and not first.done()
        gate.set()
        done = await first
        assert done.replies[0].completion_tokens >= 1 and backend.pending == 0
        gate = threading.Event()
        backend.executor.submit(gate.wait)
        with pytest.raises(TimeoutError):  # a request that times out while queued leaves the queue
            await asyncio.wait_for(backend.complete(gen), 0.05)
        assert backend.pending == 0
        gate.set()
        long = Generation(model=TINY_ID, messages=[{"role": "user", "content": "hi " * 1100}], max_tokens=24)
        with pytest.raises(FacevlmError) as err:
            await backend.complete(long)
        assert err.value.code == "context_length_exceeded"
        await backend.close()

    asyncio.run(scenario())


def test_chat_needs_api_keys_off_loopback_like_everything(tmp_path) -> None:
    with pytest.raises(FacevlmError, match="api_keys"):
        serve_config(tmp_path, "m", ChatConfig(model=SCRIPTED_ID), host="0.0.0.0", api_keys=[])
    with pytest.raises(FacevlmError, match="chat.max_tokens"):
        ChatConfig(model=SCRIPTED_ID, max_tokens=4096, max_model_len=2048)
    with pytest.raises(FacevlmError, match="chat.backend"):
        ChatConfig(model=SCRIPTED_ID, backend="gpu")
    with pytest.raises(FacevlmError, match="FaceCLIP"):
        serve_config(tmp_path, "m", ChatConfig(model=SCRIPTED_ID, served_model_name="facevlm-clip-tiny"))
    assert API_KEY


def test_waiting_requests_are_generated_together(tiny_vlm) -> None:
    """Requests that arrive while the model is busy share the next `generate` (same model and sampling,
    up to max_batch conversations); a seeded one runs alone; each gets its own reply and usage."""
    backend = InProcessBackend(tiny_chat(tiny_vlm, max_batch=3))
    batches: list[int] = []
    generate = backend.chat.generate

    def counted(conversations, **kwargs):
        batches.append(len(conversations))
        return generate(conversations, **kwargs)

    backend.chat.generate = counted
    short = Generation(model=TINY_ID, messages=[{"role": "user", "content": "Hi"}], max_tokens=3)
    longer = Generation(model=TINY_ID, messages=[{"role": "user", "content": "Hello there, model"}], max_tokens=3)
    seeded = Generation(model=TINY_ID, messages=[{"role": "user", "content": "Hi"}], max_tokens=3, seed=1)
    two = Generation(model=TINY_ID, messages=[{"role": "user", "content": "Hey"}], max_tokens=3, n=2)

    async def scenario() -> list:
        gate = threading.Event()
        backend.executor.submit(gate.wait)  # the model is busy: everything below waits
        tasks = [asyncio.create_task(backend.complete(g)) for g in (short, seeded, longer, two, short)]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(*tasks)

    done = asyncio.run(scenario())
    # first batch: short + longer + short (two's 2 choices would make 4 > 3); then seeded alone; then two
    assert batches == [3, 1, 2]
    assert [len(c.replies) for c in done] == [1, 1, 1, 2, 1]
    assert done[2].prompt_tokens > done[0].prompt_tokens  # each request keeps its own usage
    assert all(c.completion_tokens >= 1 for c in done) and backend.pending == 0


def test_a_batch_that_fails_fails_its_requests_and_the_next_batch_runs(tiny_vlm) -> None:
    """An unexpected error while preparing a batch reaches its requests (never a hang until the timeout),
    and the model keeps serving."""
    backend = InProcessBackend(tiny_chat(tiny_vlm))
    counted = backend.prompt_tokens
    calls = []

    def broken_once(messages):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("template exploded")
        return counted(messages)

    backend.prompt_tokens = broken_once
    gen = Generation(model=TINY_ID, messages=[{"role": "user", "content": "Hi"}], max_tokens=2)

    async def scenario() -> object:
        with pytest.raises(RuntimeError, match="template exploded"):
            await asyncio.wait_for(backend.complete(gen), 60)
        return await asyncio.wait_for(backend.complete(gen), 60)

    done = asyncio.run(scenario())
    assert done.completion_tokens >= 1 and backend.pending == 0
