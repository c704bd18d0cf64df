"""What /openapi.json says, kept true: every status a route can answer, with OpenAI's error schema, and
the bodies of the routes that parse JSON-or-multipart by hand.

FastAPI documents a 422 `HTTPValidationError` for every route with parameters; this gateway answers
validation errors with 400 and OpenAI's error object (facevlm.serve.errors), so `install` replaces that
entry, and hoists the `$defs` of hand-written body schemas into `components/schemas`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from facevlm.serve.api_models import ErrorResponse

WHY = {
    400: "invalid request: malformed JSON or form, a value outside the schema, a corrupt or truncated image, "
    "no face (or several where one is expected) in a photo",
    401: "missing or invalid API key (Authorization: Bearer <key>)",
    404: "unknown gallery, face, image, cluster or model (chat: a model or adapter id not served here)",
    409: "the gallery is open for writing by another process, holds embeddings (or identity vectors) of another "
    "model, or has no identity vectors yet (`facevlm index reembed`)",
    413: "request body, image bytes or image pixels over the server's limits",
    415: "content type other than application/json or multipart/form-data, or bytes that are not a supported image",
    429: "rate limit of this API key exceeded, or (chat) too many requests waiting for the model; see Retry-After",
    502: "the chat engine (vLLM) does not answer or failed",
    504: "the answer took longer than the server allows (chat.timeout_s)",
}


ERROR_REF = "#/components/schemas/ErrorResponse"


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these error statuses, each with OpenAI's error object. 413 is on every
    route: the body limit is checked before routing (facevlm.serve.body.BodyLimit)."""
    return {s: {"model": ErrorResponse, "description": WHY[s]} for s in sorted({*statuses, 413})}


def body(
    content: dict[str, type[BaseModel] | dict[str, Any]],
    description: str,
    encodings: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`openapi_extra` documenting a body a route reads by hand: media type -> model or JSON schema
    (`encodings`: media type -> the OpenAPI `encoding` of its multipart fields)."""
    media = {
        kind: {"schema": schema(model), **({"encoding": encodings[kind]} if kind in (encodings or {}) else {})}
        for kind, model in content.items()
    }
    return {"requestBody": {"required": True, "description": description, "content": media}}


def schema(model: type[BaseModel] | dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A model's JSON schema with its `$defs` addressed in components (named `prefix` + model name)."""
    if isinstance(model, dict):
        return model
    out = model.model_json_schema(ref_template=f"#/components/schemas/{prefix}{{model}}")
    if "$defs" in out:
        out["$defs"] = {prefix + name: value for name, value in out["$defs"].items()}
    return out


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            for path in spec["paths"].values():
                for operation in path.values():
                    operation["responses"].pop("422", None)
                    _hoist(operation.get("requestBody", {}), components)
                    _hoist(operation.get("responses", {}), components)
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            if app.state.config.rate_limit.enabled:  # facevlm.serve.ratelimit: every /v1 route may answer 429
                for route, path in spec["paths"].items():
                    for operation in path.values() if route.startswith("/v1/") else ():
                        operation["responses"].setdefault(
                            "429",
                            {
                                "description": WHY[429],
                                "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
                            },
                        )
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _hoist(node: Any, components: dict[str, Any]) -> None:
    """Move every `$defs` found under `node` into `components` (their refs already point there)."""
    if isinstance(node, dict):
        components.update(node.pop("$defs", {}))
        for value in node.values():
            _hoist(value, components)
    elif isinstance(node, list):
        for value in node:
            _hoist(value, components)
