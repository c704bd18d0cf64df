"""The facevlm gateway (FastAPI): OpenAI-compatible embeddings, face search and gallery management.

Laid out like vLLM's `entrypoints/openai`: one module per endpoint group (health, models, embeddings,
search, galleries, recognition (verify, identify), clusters), each a router whose handlers find what they
share on `app.state` (`config`, `embedder`, `galleries` with the identity model, `keys`), and this module
only assembles routers, middleware and error handlers.
A later `facevlm/serve/chat.py` (/v1/chat/completions) drops in beside `embeddings.py`.

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
from facevlm.serve import clusters, embeddings, galleries, health, models, openapi, recognition, search
from facevlm.serve.body import BodyLimit
from facevlm.serve.config import ServeConfig
from facevlm.serve.errors import install
from facevlm.serve.state import Galleries


def create_app(cfg: ServeConfig, embedder: Any = None) -> FastAPI:
    """The gateway app. `embedder` defaults to FaceCLIP `cfg.model`, loaded here (before the port
    opens): the schema states the model's dimension, and a model that does not load fails at start."""
    if embedder is None:
        if cfg.torch_threads:
            import torch

            torch.set_num_threads(cfg.torch_threads)
        from facevlm.index.embed import get_embedder

        embedder = get_embedder(cfg.model, cfg.device, cfg.clip_backend or None, cfg.text_cache_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        app.state.galleries.close()

    app = FastAPI(
        title="facevlm gateway",
        version=__version__,
        lifespan=lifespan,
        redirect_slashes=False,
        description="FaceCLIP embeddings (OpenAI-compatible), face galleries and face search.",
    )
    app.state.config, app.state.embedder, app.state.keys = cfg, embedder, cfg.keys()
    app.state.galleries = Galleries(cfg, embedder)
    app.state.started = int(time.time())
    app.add_middleware(BodyLimit, limit=cfg.limits.max_request_bytes)
    install(app, hidden=[str(cfg.galleries_root().resolve()), str(cfg.galleries_root()), str(paths.home())])
    for router in (
        health.router(),
        models.router(cfg),
        embeddings.router(cfg, embedder.dim),
        search.router(cfg),
        galleries.router(cfg),
        recognition.router(cfg),
        clusters.router(cfg),
    ):
        app.include_router(router)
    openapi.install(app)
    return app
