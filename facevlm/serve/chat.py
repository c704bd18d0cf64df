"""POST /v1/chat/completions: OpenAI-compatible chat with images, and face_search run inside the chat.

The handler only orders the steps; each runs where it must: the request's images are decoded and
prepared in the threadpool (chat_serving.conversation), the model runs in its backend (chat_backends:
an executor of its own, or the vLLM engine over HTTP), a face_search call is executed in the threadpool
(chat_serving.outcome). `chat.timeout_s` bounds all of it, queueing included.

Streaming waits for the backend's first piece before answering, so that what fails before any text
exists (a full queue, a prompt over the context) is an ordinary JSON error with its status; what fails
later is an SSE `data: {"error": ...}` event before `data: [DONE]`, as vLLM does.
"""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from facevlm.errors import FacevlmError
from facevlm.serve import chat_protocol as p
from facevlm.serve.body import json_only, read_json
from facevlm.serve.chat_backends import Generation, Piece
from facevlm.serve.chat_serving import (
    Conversation,
    check_model,
    conversation,
    holds_text,
    joined,
    model_tools,
    outcome,
)
from facevlm.serve.config import ServeConfig
from facevlm.serve.deps import secured
from facevlm.serve.errors import error_body
from facevlm.serve.openapi import body, errors, schema

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def router(cfg: ServeConfig) -> APIRouter:
    limits, chat = cfg.limits, cfg.chat
    Body = p.chat_request(chat, limits.max_image_bytes, limits.max_image_pixels)
    auth = (401,) if cfg.keys() else ()
    r = APIRouter(
        dependencies=[*secured(cfg.keys()), Depends(json_only)], tags=["chat"], strict_content_type=False
    )  # no Content-Type: read as JSON, as on the other routes
    responses = errors(400, *auth, 404, 413, 415, 429, 502, 504)
    chunk = schema(p.ChatCompletionChunk)
    defs = {**chunk.pop("$defs", {}), "ChatCompletionChunk": chunk}  # hoisted into components (openapi.py)
    responses[200] = {
        "description": "the completion; with `stream: true`, server-sent chat.completion.chunk events",
        "content": {"text/event-stream": {"schema": {**p.sse_event_schema(), "$defs": defs}}},
    }
    doc = body({"application/json": Body}, "OpenAI's chat completion request (docs/api.md, Chat)")

    @r.post("/v1/chat/completions", response_model=p.ChatCompletion, responses=responses, openapi_extra=doc)
    async def completions(request: Request) -> Any:
        state = request.app.state
        deadline = asyncio.get_running_loop().time() + state.config.chat.timeout_s
        async with _deadline(deadline):
            # parsed here, not by FastAPI: with JSON's numbers (2.0 is the integer 2), then validated and its
            # images decoded, all in one threadpool call
            body, conv = await read_json(request, lambda raw: _prepare(state, Body, raw))
        return await _answer(state, body, conv, deadline)

    return r


def _prepare(state: Any, Body: type[p.ChatRequest], raw: Any) -> tuple[p.ChatRequest, Conversation]:
    body = Body.model_validate(raw)
    check_model(state, body.model)
    return body, conversation(state, body)


async def _answer(state: Any, body: p.ChatRequest, conv: Conversation, deadline: float) -> Any:
    async with _deadline(deadline):
        gen = _generation(state, body, conv)
        if body.stream:
            pieces = state.chat.stream(gen).__aiter__()
            first = await anext(pieces, None)
            events = _sse(state, body, conv, first, pieces, deadline)
            return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
        done = await state.chat.complete(gen)
        choices = []
        for i, reply in enumerate(done.replies):
            out = await run_in_threadpool(outcome, state, reply, conv, body)
            text = joined(reply.text if out.text is None else out.text, out.tail)
            message = p.AssistantOut(content=text, tool_calls=out.tool_calls, facevlm=out.facevlm)
            choices.append(p.Choice(index=i, message=message, finish_reason=out.finish))
    usage = p.ChatUsage(
        prompt_tokens=done.prompt_tokens,
        completion_tokens=done.completion_tokens,
        total_tokens=done.prompt_tokens + done.completion_tokens,
    )
    answer = p.ChatCompletion(id=_id(), created=int(time.time()), model=body.model, choices=choices, usage=usage)
    return JSONResponse(p.dump(answer))


def _generation(state: Any, body: p.ChatRequest, conv: Conversation) -> Generation:
    chat = state.config.chat
    return Generation(
        model=body.model,
        messages=conv.messages,
        max_tokens=body.completion_limit or chat.default_max_tokens,
        n=body.n or 1,
        temperature=0.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        seed=body.seed,
        stop=body.stops(),
        tools=model_tools(state, body),
    )


class _deadline:
    """asyncio.timeout_at that answers 504 `timeout` (the request's fault it is not, nor a bug)."""

    def __init__(self, when: float):
        self.timeout = asyncio.timeout_at(when)

    async def __aenter__(self) -> None:
        await self.timeout.__aenter__()

    async def __aexit__(self, *exc: Any) -> bool:
        try:
            return bool(await self.timeout.__aexit__(*exc))
        except TimeoutError:
            raise FacevlmError(
                "the answer took longer than this server allows (chat.timeout_s)", code="timeout", status_code=504
            ) from None


async def _sse(
    state: Any,
    body: p.ChatRequest,
    conv: Conversation,
    first: Piece | None,
    pieces: AsyncIterator[Piece],
    deadline: float,
) -> AsyncIterator[str]:
    head = {"id": _id(), "object": "chat.completion.chunk", "created": int(time.time()), "model": body.model}
    with_usage = bool(body.stream_options and body.stream_options.include_usage)

    def event(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
        chunk = {**head, "choices": choices, **({"usage": usage} if with_usage else {})}
        return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n"

    def delta(index: int, values: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": index, "delta": values, "logprobs": None, "finish_reason": finish}

    for i in range(body.n or 1):
        yield event([delta(i, {"role": "assistant", "content": ""})])
    spoke: set[int] = set()
    held: dict[int, str] = {}  # the competence gate reads whole answers: text is sent once it is checked
    hold = holds_text(state)
    usage = (0, 0)
    try:
        async for piece, out in _timed(state, body, conv, _chain(first, pieces), deadline):
            if piece.usage is not None:
                usage = piece.usage
            elif out is None:
                if hold:
                    held[piece.index] = held.get(piece.index, "") + (piece.text or "")
                    continue
                spoke.add(piece.index)
                yield event([delta(piece.index, {"content": piece.text})])
            else:
                values: dict[str, Any] = {}
                if hold:
                    text = joined(held.pop(piece.index, None) if out.text is None else out.text, out.tail)
                    if text:
                        values["content"] = text
                elif out.tail:
                    values["content"] = (" " if piece.index in spoke else "") + out.tail
                if out.facevlm:
                    values["facevlm"] = out.facevlm
                if out.tool_calls:
                    values["tool_calls"] = [{"index": k, **call} for k, call in enumerate(out.tool_calls)]
                if values:
                    yield event([delta(piece.index, values)])
                yield event([delta(piece.index, {}, out.finish)])
        if with_usage:
            yield event([], {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)})
    except FacevlmError as exc:
        yield f"data: {json.dumps(error_body(' '.join(str(exc).split()), exc.status_code, exc.code))}\n\n"
    yield "data: [DONE]\n\n"


async def _timed(
    state: Any, body: p.ChatRequest, conv: Conversation, pieces: AsyncIterator[Piece], deadline: float
) -> AsyncIterator[tuple[Piece, Any]]:
    """(piece, its Outcome once the choice is complete) within the deadline. The deadline covers the waits
    for the model and the search, never a `yield`: a slow reader of the stream is not the model's delay."""
    while True:
        async with _deadline(deadline):
            piece = await anext(pieces, None)
            out = None
            if piece is not None and piece.reply is not None:
                out = await run_in_threadpool(outcome, state, piece.reply, conv, body)
        if piece is None:
            return
        yield piece, out


async def _chain(first: Piece | None, rest: AsyncIterator[Piece]) -> AsyncIterator[Piece]:
    if first is None:
        return
    yield first
    async for piece in rest:
        yield piece


def _id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"
