"""The web UI (gradio): a chat page and a gallery page in one `gr.Blocks`, both clients of the gateway's
HTTP API at `api_url`.

Two ways to host it, one code path: `facevlm ui --gateway URL` serves it on its own port
(`launch`), and `mount(app, api_url)` adds it to a FastAPI app under /ui (the gateway's own, for one
server on one port); either way every action is an HTTP request to `api_url` with the key the user typed.

The API key lives in a password box of the page and travels in the body of gradio's event requests, then
in the `Authorization` header to the gateway; it is never put in a URL nor stored by the UI.
"""

from __future__ import annotations

import os
from typing import Any

import gradio as gr

from facevlm.errors import FacevlmError
from facevlm.ui.client import Gateway
from facevlm.ui.context import Context, failure

CACHE_SWEEP = (600, 3600)  # gradio's temp files (chat uploads, grid images): swept every 10 min after 1 h
CONCURRENCY = 16  # events of one kind (chat turns, searches) in flight at once; the gateway queues the rest
MAX_FILE_SIZE = "20mb"  # the gateway's default max_image_bytes
CSS = "#status p { margin: 0; } footer { display: none !important; }"


def is_chat(card: dict[str, Any], embedding_model: str | None) -> bool:
    """A chat model or adapter card of /v1/models (`kind: "chat"`; a gateway without kinds: not FaceCLIP)."""
    return card.get("kind") == "chat" if "kind" in card else card.get("id") != embedding_model


def model_choice(card: dict[str, Any]) -> tuple[str, str]:
    """(label, id) for the model picker: an adapter says which model it adapts."""
    parent = card.get("parent")
    return (f"{card['id']} (adapter of {parent})" if parent else card["id"]), card["id"]


async def connect(api_url: str, key: str, gallery: str | None) -> tuple[Any, Any, str]:
    """Galleries (from /healthz, no key needed) and chat models (from /v1/models): the choices of the
    page-wide gallery picker and the chat page's model picker, plus a status line saying what is missing."""
    try:
        async with Gateway(api_url, key) as gw:
            health = await gw.health()
            galleries = list(health.get("galleries") or [])
            try:
                models = [model_choice(m) for m in await gw.models() if is_chat(m, health.get("model"))]
                note = f"connected to {api_url}: {len(models)} chat model(s), {len(galleries)} gallery(ies)"
            except FacevlmError as exc:
                models = []
                note = failure(exc) if key.strip() or exc.status_code != 401 else "🔑 this gateway needs an API key"
    except FacevlmError as exc:
        return gr.Dropdown(), gr.Dropdown(), failure(exc)
    chosen = gallery or (galleries[0] if galleries else "default")
    gallery_pick = gr.Dropdown(choices=sorted(set(galleries) | {chosen}), value=chosen)
    model_pick = gr.Dropdown(choices=models, value=models[0][1] if models else None)
    if not models and "needs" not in note and "⚠️" not in note:
        note += " (no chat model configured: the chat page cannot answer)"
    return gallery_pick, model_pick, note


def build_ui(api_url: str, title: str = "facevlm") -> gr.Blocks:
    """The whole UI for the gateway at `api_url` (e.g. http://127.0.0.1:8000)."""
    from facevlm.ui.chat import build_chat
    from facevlm.ui.gallery import build_gallery

    api_url = api_url.rstrip("/")
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=CACHE_SWEEP) as ui:
        with gr.Row(equal_height=True):
            key = gr.Textbox(
                label="API key",
                type="password",
                placeholder="only if the gateway has keys",
                elem_id="api-key",
                scale=2,
            )
            gallery = gr.Dropdown(label="Gallery", choices=[], allow_custom_value=True, elem_id="gallery-pick", scale=2)
            refresh = gr.Button("Connect / refresh", elem_id="connect", scale=1)
        status = gr.Markdown(elem_id="status")
        ctx = Context(api_url, key, gallery)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                model = build_chat(ctx)
            with gr.Tab("Gallery", id="gallery"):
                build_gallery(ctx)

        async def reconnect(key_value: str, gallery_value: str | None) -> tuple[Any, Any, str]:
            return await connect(api_url, key_value or "", gallery_value)

        for event in (ui.load, refresh.click, key.submit):
            event(reconnect, [key, gallery], [gallery, model, status])
    # gradio runs one event of a kind at a time by default: users would wait for each other's chats
    return ui.queue(default_concurrency_limit=CONCURRENCY)


def launch_kwargs() -> dict[str, Any]:
    """Settings shared by `launch` and `mount`: no server-side rendering (it needs node), a file-size cap."""
    return {"ssr_mode": False, "max_file_size": MAX_FILE_SIZE, "css": CSS, "footer_links": []}


def mount(app: Any, api_url: str, path: str = "/ui") -> Any:
    """Add the UI to the FastAPI `app` under `path`; it still calls the API over HTTP at `api_url`
    (the same server's loopback address when `app` is the gateway), and its handlers are async, so
    they never hold a threadpool worker the API request they wait for would need."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return gr.mount_gradio_app(app, build_ui(api_url), path=path, **launch_kwargs())


def loopback_url(host: str, port: int) -> str:
    """The URL a UI in the gateway's process uses to call that gateway: loopback, whatever it binds."""
    if host in ("::1", "::"):
        return f"http://[::1]:{port}"
    return f"http://127.0.0.1:{port}"
