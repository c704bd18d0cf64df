"""The chat page: multi-turn chat about face photos with FaceVLM through `POST /v1/chat/completions`
(streamed), and the face search the gateway runs inside a chat shown in the results grid.

A chat photo goes to the gateway inside the request (a data: URI) and is kept only in this browser
session's memory (and gradio's temporary cache, swept after an hour): nothing is stored unless the user
presses "Add the chat photo to the gallery", the one button that calls the gallery upload route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from facevlm.data.lexicon import concept_name
from facevlm.errors import FacevlmError
from facevlm.image import sniff, to_data_uri
from facevlm.ui.client import Gateway
from facevlm.ui.context import Context, failure
from facevlm.ui.grid import results_grid, thumbnails


@dataclass
class ChatSession:
    """One browser session's conversation: the OpenAI messages sent back each turn, what the chatbot
    shows, and the latest chat photo (name, bytes), held in memory for the add-to-gallery button."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    shown: list[dict[str, Any]] = field(default_factory=list)
    photo: tuple[str, bytes] | None = None


def photo_part(path: str) -> tuple[tuple[str, bytes], dict[str, Any]]:
    """The uploaded file as (name, bytes) and as an OpenAI `image_url` part; the type is sniffed from the
    bytes (FacevlmError 415 for anything that is not an image), the gateway decodes and checks the rest."""
    data = Path(path).read_bytes()
    fmt, _ = sniff(data)
    uri = to_data_uri(data, Image.MIME.get(fmt, "image/jpeg"))
    return (Path(path).name, data), {"type": "image_url", "image_url": {"url": uri}}


def user_turn(session: ChatSession, text: str, files: list[str]) -> None:
    """Add the user's text and photos to the conversation (OpenAI content parts) and to the chatbot."""
    parts: list[dict[str, Any]] = []
    for path in files:
        session.photo, part = photo_part(path)
        parts.append(part)
        session.shown.append({"role": "user", "content": {"path": path}})
    if text:
        parts.append({"type": "text", "text": text})
        session.shown.append({"role": "user", "content": text})
    content: Any = parts if any(p["type"] == "image_url" for p in parts) else text
    session.messages.append({"role": "user", "content": content})


def search_results(chunk: dict[str, Any]) -> dict[str, Any] | None:
    """The `facevlm` extension of a chat chunk or completion (docs/api.md "Search in chat"): the search
    the gateway ran for the model's `face_search` call, on the assistant message (`delta` when streaming,
    `message` otherwise) of a choice; None when the answer has none."""
    for choice in chunk.get("choices") or []:
        for key in ("delta", "message"):
            found = (choice.get(key) or {}).get("facevlm")
            if isinstance(found, dict):
                return found
    return None


def outcome(results: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """(hits, a line saying what the search did, or why the model's answer was withheld) of a `facevlm`
    extension (docs/api.md "Search in chat", "When the model is unsure")."""
    unsure = results.get("unsure")
    if isinstance(unsure, dict):
        concepts = ", ".join(concept_name(c) for c in unsure.get("concepts") or [])
        said = unsure.get("model_reply") or ""
        return [], f"ℹ️ the model's answer about {concepts} is withheld (not measured better than a guess): “{said}”"
    error = results.get("error")
    if isinstance(error, dict):
        return [], f"⚠️ the search could not run: {error.get('message') or error.get('code')}"
    search = results.get("search") or {}
    hits = search.get("data") or []
    return hits, f"searched gallery '{search.get('gallery')}': {len(hits)} face(s)"


async def reply(api_url: str, key: str, body: dict[str, Any]) -> AsyncIterator[tuple[str, dict[str, Any] | None]]:
    """Stream the assistant's answer (choice 0): (text so far, the `facevlm` search results once they come)."""
    text, results = "", None
    async with Gateway(api_url, key) as gw:
        async for chunk in gw.chat_stream(body):
            for choice in chunk.get("choices") or []:
                if choice.get("index", 0) == 0:
                    text += (choice.get("delta") or {}).get("content") or ""
            results = search_results(chunk) or results
            yield text, results


def build_chat(ctx: Context) -> gr.Dropdown:
    """The chat page's components and events; returns the model picker (filled by the page's connect)."""
    session = gr.State(ChatSession())
    model = gr.Dropdown(label="Chat model or adapter", choices=[], elem_id="chat-model")
    chatbot = gr.Chatbot(label="FaceVLM", elem_id="chatbot", height=420, buttons=["copy"])  # no "share"
    box = gr.MultimodalTextbox(
        placeholder="Attach a face photo and ask about it, or ask to find faces in the gallery",
        file_types=["image"],
        file_count="single",
        elem_id="chat-input",
        show_label=False,
    )
    with gr.Row():
        add = gr.Button("Add the chat photo to the gallery", elem_id="chat-add")
        new = gr.Button("New chat", elem_id="chat-new")
    note = gr.Markdown(elem_id="chat-note")
    grid = results_grid("Search results", "chat-results")

    async def send(message: dict[str, Any], state: ChatSession, model_id: str | None, key: str, gallery: str | None):
        text, files = (message or {}).get("text", "").strip(), list((message or {}).get("files") or [])
        if not text and not files:
            yield gr.MultimodalTextbox(), state.shown, state, gr.Gallery(), ""
            return
        if not model_id:
            yield gr.MultimodalTextbox(), state.shown, state, gr.Gallery(), "⚠️ choose a chat model first"
            return
        try:
            user_turn(state, text, files)
        except FacevlmError as exc:
            yield gr.MultimodalTextbox(), state.shown, state, gr.Gallery(), failure(exc)
            return
        empty = gr.MultimodalTextbox(value=None)
        shown = [*state.shown, {"role": "assistant", "content": "…"}]
        yield empty, shown, state, gr.Gallery(value=None), ""
        # no max_tokens: the gateway's default_max_tokens applies (its recipe knows the model's budget)
        body = {"model": model_id, "messages": state.messages, "temperature": 0}
        if gallery:
            body["facevlm"] = {"gallery": gallery}  # where a face_search in this chat runs
        answer, problem, failed = "", "", False
        try:
            results = None
            async for answer, found in reply(ctx.api_url, key, body):
                results = found
                yield empty, [*state.shown, {"role": "assistant", "content": answer or "…"}], state, gr.Gallery(), ""
            if results is not None:
                hits, problem = outcome(results)
                async with Gateway(ctx.api_url, key) as gw:
                    _, items = await thumbnails(gw, hits)
                yield empty, [*state.shown, {"role": "assistant", "content": answer}], state, items, problem
        except Exception as exc:  # every failure is shown as one line, never a traceback
            problem, failed = failure(exc), True
        if failed:
            state.messages.pop()  # a failed turn is not part of the conversation the next turn sends
            state.shown.append({"role": "assistant", "content": problem})
        else:
            state.messages.append({"role": "assistant", "content": answer})
            state.shown.append({"role": "assistant", "content": answer or "*(the model answered nothing)*"})
        yield empty, state.shown, state, gr.Gallery(), problem

    async def add_photo(state: ChatSession, key: str, gallery: str | None) -> str:
        if state.photo is None:
            return "⚠️ no photo in this chat yet"
        if not gallery:
            return "⚠️ choose or type a gallery name first"
        try:
            async with Gateway(ctx.api_url, key) as gw:
                added = await gw.add_photos(gallery, [state.photo])
        except Exception as exc:
            return failure(exc)
        ids = [face["id"] for face in added.get("data") or []]
        if not ids:
            return f"no face was found in {state.photo[0]}: nothing stored"
        return f"stored {state.photo[0]} in gallery '{gallery}': face(s) {', '.join(ids)}"

    def reset() -> tuple[list, ChatSession, Any, str]:
        return [], ChatSession(), gr.Gallery(value=None), ""

    box.submit(send, [box, session, model, ctx.key, ctx.gallery], [box, chatbot, session, grid, note])
    add.click(add_photo, [session, ctx.key, ctx.gallery], [note])
    new.click(reset, None, [chatbot, session, grid, note])
    return model
