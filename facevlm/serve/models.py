"""GET /v1/models: the one FaceCLIP this gateway serves, in OpenAI's list shape."""

from fastapi import APIRouter, Request

from facevlm.serve import api_models as m
from facevlm.serve.config import ServeConfig
from facevlm.serve.deps import secured
from facevlm.serve.openapi import errors


def router(cfg: ServeConfig) -> APIRouter:
    auth = (401,) if cfg.keys() else ()
    r = APIRouter(dependencies=secured(cfg.keys()), tags=["models"])

    @r.get("/v1/models", response_model=m.ModelList, responses=errors(*auth))
    def models(request: Request) -> m.ModelList:
        return m.ModelList(data=[m.ModelCard(id=request.app.state.config.model_id, created=request.app.state.started)])

    return r
