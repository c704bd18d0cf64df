"""GET /v1/models: what this gateway serves, in OpenAI's list shape: the FaceCLIP (`kind: embedding`),
then, when chat is configured, the chat model and its LoRA adapters (`kind: chat`; an adapter's `parent`
is the chat model), the ids /v1/embeddings and /v1/chat/completions accept."""

from fastapi import APIRouter, Request

from facevlm.serve.chat_protocol import ServedModel, ServedModelList
from facevlm.serve.config import ServeConfig
from facevlm.serve.deps import secured
from facevlm.serve.openapi import errors


def router(cfg: ServeConfig) -> APIRouter:
    auth = (401,) if cfg.keys() else ()
    r = APIRouter(dependencies=secured(cfg.keys()), tags=["models"])

    @r.get("/v1/models", response_model=ServedModelList, responses=errors(*auth))
    def models(request: Request) -> ServedModelList:
        state = request.app.state
        cfg, created = state.config, state.started
        cards = [ServedModel(id=cfg.model_id, created=created, kind="embedding")]
        chat = cfg.chat
        if chat.enabled:
            cards.append(ServedModel(id=chat.model_id, created=created, kind="chat"))
            cards += [ServedModel(id=a, created=created, kind="chat", parent=chat.model_id) for a in chat.adapters]
        return ServedModelList(data=cards)

    return r
