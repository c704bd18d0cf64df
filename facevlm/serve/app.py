"""The facevlm gateway (FastAPI): OpenAI-compatible embeddings and chat, face search and gallery management.

Laid out like vLLM's `entrypoints/openai`: one module per endpoint group (health, models, embeddings,
search, galleries, recognition (verify, identify), clusters, chat), each a router whose handlers find what
they share on `app.state` (`config`, `embedder`, `galleries` with the identity model, `keys`, and with a
`chat` block the chat backend `chat` and its image preparation `chat_view`), and this module only
assembles routers, middleware and error handlers.

One process holds one FaceCLIP and the galleries it opens (each gallery is written by one process:
facevlm.index.store). Heavy work (decoding, gallery opening, embedding, FAISS, SQLite) runs in the
threadpool so the event loop keeps answering; body limits are enforced before anything is read.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from facevlm import __version__, paths
from facevlm.serve import chat, clusters, embeddings, galleries, health, models, openapi, recognition, search
from facevlm.serve.body import BodyLimit
from facevlm.serve.config import ServeConfig
from facevlm.serve.errors import install
from facevlm.serve.ratelimit import RateLimit
from facevlm.serve.state import Galleries


def create_app(cfg: ServeConfig, embedder: Any = None, chat_backend: Any = None) -> FastAPI:
    """The gateway app. `embedder` defaults to FaceCLIP `cfg.model`, loaded here (before the port
    opens): the schema states the model's dimension, and a model that does not load fails at start.
    With `cfg.chat.model`, `chat_backend` (a facevlm.serve.chat_backends.ChatBackend) defaults to the
    configured one: the in-process model is loaded here, a vLLM engine is started (or checked) in the
    lifespan, before the port opens, and stopped when the app stops."""
    if embedder is None:
        if cfg.torch_threads:
            import torch

            torch.set_num_threads(cfg.torch_threads)
        from facevlm.index.embed import get_embedder

        embedder = get_embedder(cfg.model, cfg.device, cfg.clip_backend or None, cfg.text_cache_size)

    if cfg.chat.enabled and chat_backend is None:
        from facevlm.serve.chat_backends import InProcessBackend
        from facevlm.serve.chat_vllm import VLLMBackend

        chat_backend = VLLMBackend(cfg.chat) if cfg.chat.backend_kind() == "vllm" else InProcessBackend(cfg.chat)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if chat_backend is not None:
            await chat_backend.start()
        try:
            yield
        finally:
            if chat_backend is not None:
                await chat_backend.close()
            app.state.galleries.close()

    app = FastAPI(
        title="facevlm gateway",
        version=__version__,
        lifespan=lifespan,
        redirect_slashes=False,
        description="FaceCLIP embeddings and FaceVLM chat (OpenAI-compatible), face galleries and face search.",
    )
    app.state.config, app.state.embedder, app.state.keys = cfg, embedder, cfg.keys()
    app.state.galleries = Galleries(cfg, embedder)
    app.state.started = int(time.time())
    app.state.chat = chat_backend
    if chat_backend is not None:
        from facevlm.serve.chat_serving import ModelView, competence_tables

        app.state.chat_view = ModelView(cfg.chat.crop, app.state.galleries.experts)
        app.state.chat_competence = competence_tables(cfg)
    app.add_middleware(BodyLimit, limit=cfg.limits.max_request_bytes)
    if cfg.rate_limit.enabled:  # outermost: a refused request costs nothing else
        app.add_middleware(RateLimit, cfg=cfg.rate_limit)
    install(app, hidden=[str(cfg.galleries_root().resolve()), str(cfg.galleries_root()), str(paths.home())])
    for router in (
        health.router(),
        models.router(cfg),
        embeddings.router(cfg, embedder.dim),
        search.router(cfg),
        galleries.router(cfg),
        recognition.router(cfg),
        clusters.router(cfg),
        *([chat.router(cfg)] if cfg.chat.enabled else []),
    ):
        app.include_router(router)
    openapi.install(app)
    if cfg.ui:  # the UI calls this same server over loopback HTTP, like any client (docs/ui.md)
        from facevlm.ui.app import loopback_url, mount

        mount(app, loopback_url(cfg.host, cfg.port))
    return app
