"""The vLLM chat backend: the engine's OpenAI server (facevlm.engine) over HTTP, behind the one interface of
facevlm.serve.chat_backends. The gateway starts and stops the engine unless `chat.engine.url` names a
running one. The engine parses the model's Hermes-style tool calls (`--tool-call-parser hermes`) when the
request carries tools, so the gateway always sends them: the client's, else the face_search schema.
Request bodies (the prepared images in base64) are built in a worker thread, off the event loop that relays
every other stream."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from facevlm.errors import FacevlmError
from facevlm.serve.chat_backends import ChatBackend, Completion, Generation, Piece, adapter_dir
from facevlm.serve.config import ChatConfig
from facevlm.vlm.inference import Reply

JSON = {"content-type": "application/json"}

log = logging.getLogger("facevlm.serve.chat")


def image_uri(image: Any) -> str:
    """A prepared image for the engine, lossless, so it sees the pixels the in-process model would. BMP, which
    is only the pixels behind a header: the engine decodes it at once, usually on the same host. Writing a
    320x480 face crop costs ~0.7 ms as BMP, ~5 ms as stored PNG (PIL still filters every row) and ~33 ms as
    PNG at PIL's default level, and this is most of the gateway's own CPU per request (docs/benchmarks.md
    "Chat backends side by side"); vLLM reads BMP like any other allowed format."""
    buf = io.BytesIO()
    (image if image.mode == "RGB" else image.convert("RGB")).save(buf, format="BMP")
    return "data:image/bmp;base64," + base64.b64encode(buf.getvalue()).decode()


class VLLMBackend(ChatBackend):
    kind = "vllm"

    def __init__(self, cfg: ChatConfig):
        self.cfg, self.url, self.handle, self.client = cfg, cfg.engine.url.rstrip("/"), None, None

    async def start(self) -> None:
        import httpx

        if not self.url:
            self.handle = await asyncio.to_thread(start_engine, self.cfg)
            self.url = self.handle.url
        self.client = httpx.AsyncClient(base_url=self.url, timeout=self.cfg.timeout_s)
        try:
            served = {card["id"] for card in (await self._get("/models"))["data"]}
        except BaseException:
            await self.close()
            raise
        missing = [i for i in self.cfg.model_ids() if i not in served]
        if missing:
            await self.close()
            raise FacevlmError(f"the engine at {self.url} does not serve {', '.join(missing)} (only {sorted(served)})")

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        if self.handle is not None:
            from facevlm.engine import launcher

            await asyncio.to_thread(launcher.stop, self.handle.port)
            self.handle = None

    def body(self, gen: Generation, stream: bool) -> dict[str, Any]:
        out = {
            "model": gen.model,
            "messages": [_openai_message(msg) for msg in gen.messages],
            "n": gen.n,
            "max_tokens": gen.max_tokens,
            "temperature": gen.temperature,
            "top_p": gen.top_p,
            "seed": None if gen.seed is None else gen.seed % 2**63,  # the engine takes non-negative int64
            "stop": gen.stop or None,
            "tools": gen.tools or None,
            "tool_choice": "auto" if gen.tools else None,
            "stream": stream,
        }
        if stream:
            out["stream_options"] = {"include_usage": True}
        return {k: v for k, v in out.items() if v is not None}

    async def payload(self, gen: Generation, stream: bool) -> bytes:
        """The request body as JSON bytes, made in a worker thread: its images are PNG-encoded (~5 ms for a face
        crop) and the JSON carries them in base64 (~0.6 MB, which orjson writes ~35x faster than `json`), none
        of which may stall the event loop that relays every other stream."""
        import orjson

        return await asyncio.to_thread(lambda: orjson.dumps(self.body(gen, stream)))

    async def complete(self, gen: Generation) -> Completion:
        data = await self._post(await self.payload(gen, stream=False))
        choices = sorted(data["choices"], key=lambda c: c["index"])
        replies = [
            Reply(msg.get("content"), msg.get("tool_calls") or [], 0, 0, c.get("finish_reason") or "stop")
            for c in choices
            for msg in [c["message"]]
        ]
        usage = data.get("usage") or {}
        return Completion(replies, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))

    async def stream(self, gen: Generation) -> AsyncIterator[Piece]:
        import httpx

        texts: dict[int, list[str]] = {}
        calls: dict[int, dict[int, dict[str, Any]]] = {}
        try:
            content = await self.payload(gen, stream=True)
            async with self.client.stream("POST", "/chat/completions", content=content, headers=JSON) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise engine_error(response.status_code, response.text)
                async for line in response.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    if "error" in chunk:
                        raise engine_error(400, json.dumps(chunk))
                    for choice in chunk.get("choices") or []:
                        i, delta = choice["index"], choice.get("delta") or {}
                        if delta.get("content"):
                            texts.setdefault(i, []).append(delta["content"])
                            yield Piece(i, text=delta["content"])
                        for d in delta.get("tool_calls") or []:
                            _merge_call(calls.setdefault(i, {}), d)
                        if choice.get("finish_reason"):
                            text = "".join(texts.get(i, [])) or None
                            found = [calls[i][k] for k in sorted(calls.get(i, {}))]
                            yield Piece(i, reply=Reply(text, found, 0, 0, choice["finish_reason"]))
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                        yield Piece(-1, usage=(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)))
        except httpx.TransportError as exc:
            raise unavailable(self.url, exc) from None

    async def _get(self, path: str) -> Any:
        import httpx

        try:
            response = await self.client.get(path)
        except httpx.TransportError as exc:
            raise unavailable(self.url, exc) from None
        if response.status_code != 200:
            raise engine_error(response.status_code, response.text)
        return response.json()

    async def _post(self, content: bytes) -> Any:
        import httpx

        try:
            response = await self.client.post("/chat/completions", content=content, headers=JSON)
        except httpx.TransportError as exc:
            raise unavailable(self.url, exc) from None
        if response.status_code != 200:
            raise engine_error(response.status_code, response.text)
        return response.json()


def start_engine(cfg: ChatConfig) -> Any:
    """Start `facevlm engine` for this chat config: the model under its id, each adapter as a LoRA."""
    from facevlm.engine import launcher
    from facevlm.vlm.build import resolve_source

    return launcher.start(
        launcher.EngineConfig(
            model=resolve_source(cfg.model),
            port=cfg.engine.port,
            served_model_name=cfg.model_id,
            loras={name: str(adapter_dir(folder)) for name, folder in cfg.adapters.items()},
            max_lora_rank=cfg.engine.max_lora_rank,
            max_model_len=cfg.max_model_len,
            kv_cache_gib=cfg.engine.kv_cache_gib,
            extra_args=list(cfg.engine.extra_args),
            startup_timeout_s=cfg.engine.startup_timeout_s,
        )
    )


def _openai_message(msg: dict[str, Any]) -> dict[str, Any]:
    content = msg.get("content")
    if isinstance(content, list):
        content = [
            {"type": "image_url", "image_url": {"url": image_uri(p["image"])}} if p.get("type") == "image" else p
            for p in content
        ]
    return {**msg, "content": content}


def _merge_call(calls: dict[int, dict[str, Any]], delta: dict[str, Any]) -> None:
    """Assemble a streamed tool call: the first delta has id and name, later ones argument fragments."""
    empty = {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
    call = calls.setdefault(delta.get("index", 0), empty)
    call["id"] = delta.get("id") or call["id"]
    fn = delta.get("function") or {}
    call["function"]["name"] += fn.get("name") or ""
    call["function"]["arguments"] += fn.get("arguments") or ""


def unavailable(url: str, exc: Exception) -> FacevlmError:
    return FacevlmError(
        f"the chat engine at {url} does not answer ({type(exc).__name__}); is it running?",
        code="engine_unavailable",
        status_code=502,
    )


def engine_error(status: int, text: str) -> FacevlmError:
    """The engine's refusal retold: its 4xx are the request's fault (the prompt is too long, ...)."""
    try:
        message = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = text[:300]
    message = " ".join(str(message).split())
    if 400 <= status < 500:
        too_long = "context length" in message or "max_model_len" in message
        code = "context_length_exceeded" if too_long else "invalid_request"
        return FacevlmError(f"the chat engine refused the request: {message}", code=code)
    log.warning("chat engine answered %s: %s", status, message)
    return FacevlmError(f"the chat engine failed ({status}): {message}", code="engine_error", status_code=502)
