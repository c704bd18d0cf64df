"""GET /healthz: liveness for load balancers and scripts; no API key, nothing heavy (a sync route, so the
directory listing runs in the threadpool)."""

from fastapi import APIRouter, Request

from facevlm.serve import api_models as m
from facevlm.serve.openapi import errors


def router() -> APIRouter:
    r = APIRouter(tags=["health"])

    @r.get("/healthz", response_model=m.Health, responses=errors())
    def healthz(request: Request) -> m.Health:
        state = request.app.state
        return m.Health(model=state.config.model_id, dim=state.embedder.dim, galleries=state.galleries.names())

    return r
