"""Model plug-in registry: `kind` in a suite's `models:` entry -> loader."""

from __future__ import annotations

import importlib

from facevlm.errors import FacevlmError
from facevlm.eval.models.base import ChatModel, EmbeddingModel, ModelSpec

Model = EmbeddingModel | ChatModel

# kind -> "module:callable" (imported on use, so a missing optional dependency breaks one plug-in only)
REGISTRY: dict[str, str] = {
    "facevlm-clip": "facevlm.eval.models.openclip:load_facevlm_clip",
    "open_clip": "facevlm.eval.models.openclip:load_open_clip",
    "hf-clip": "facevlm.eval.models.hfclip:HFClipModel",
    "expression-expert": "facevlm.eval.models.experts:ExpressionExpert",
    "dlib-identity": "facevlm.eval.models.experts:DlibIdentity",
    "imagenet-features": "facevlm.eval.models.experts:ImageNetFeatures",
    "random": "facevlm.eval.models.random:RandomModel",
    "majority": "facevlm.eval.models.majority:MajorityModel",
    "chat": "facevlm.eval.models.chat:load_chat",
}


def build_model(spec: ModelSpec) -> Model:
    if spec.kind not in REGISTRY:
        raise FacevlmError(f"model {spec.name}: unknown kind {spec.kind!r}; expected one of {', '.join(REGISTRY)}")
    module, attr = REGISTRY[spec.kind].split(":")
    return getattr(importlib.import_module(module), attr)(spec)


__all__ = ["ChatModel", "EmbeddingModel", "Model", "ModelSpec", "REGISTRY", "build_model"]
