"""POST /v1/embeddings: OpenAI-compatible FaceCLIP embeddings of texts and images (data: URIs).

The request model is built for this app (facevlm.serve.api_models.embedding_request): the served model's
dimension and the recipe's limits are in its schema. Decoding and embedding run in the threadpool."""

import base64
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from facevlm.errors import FacevlmError
from facevlm.image import decode_image, is_data_uri, parse_data_uri
from facevlm.serve import api_models as m
from facevlm.serve.body import json_only
from facevlm.serve.config import ServeConfig
from facevlm.serve.deps import secured
from facevlm.serve.openapi import errors


def router(cfg: ServeConfig, dim: int) -> APIRouter:
    limits = cfg.limits
    Body = m.embedding_request(cfg.model_id, dim, limits.max_inputs, limits.max_image_bytes, limits.max_image_pixels)
    auth = (401,) if cfg.keys() else ()
    r = APIRouter(
        dependencies=[*secured(cfg.keys()), Depends(json_only)], tags=["embeddings"], strict_content_type=False
    )  # no Content-Type: read as JSON, as on the other routes

    @r.post("/v1/embeddings", response_model=m.EmbeddingResponse, responses=errors(400, *auth, 404, 413, 415))
    async def embeddings(body: Body, request: Request) -> m.EmbeddingResponse:  # type: ignore[valid-type]
        return await run_in_threadpool(embed, request.app.state, body)

    return r


def embed(state: Any, body: m.EmbeddingRequest) -> m.EmbeddingResponse:
    cfg, emb, limits = state.config, state.embedder, state.galleries.limits
    if body.model != cfg.model_id:
        raise FacevlmError(
            f"model {body.model!r} is not served here; use {cfg.model_id!r}", code="model_not_found", status_code=404
        )
    inputs = [body.input] if isinstance(body.input, str) else body.input
    images = {
        i: decode_image(parse_data_uri(s, f"input[{i}]"), limits, f"input[{i}]").image
        for i, s in enumerate(inputs)
        if is_data_uri(s)
    }
    texts = {i: s for i, s in enumerate(inputs) if i not in images}
    vectors = np.zeros((len(inputs), emb.dim), np.float32)
    if images:
        vectors[list(images)] = emb.images(list(images.values()))
    if texts:
        vectors[list(texts)] = emb.texts(list(texts.values()))
    tokens = emb.count_tokens(list(texts.values()))
    data = [
        m.Embedding(
            index=i,
            embedding=base64.b64encode(v.astype("<f4").tobytes()).decode()
            if body.encoding_format == "base64"
            else v.tolist(),
        )
        for i, v in enumerate(vectors)
    ]
    return m.EmbeddingResponse(data=data, model=cfg.model_id, usage=m.Usage(prompt_tokens=tokens, total_tokens=tokens))
