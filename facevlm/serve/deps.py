"""Dependencies shared by the routers: the API-key check and the typed path parameters.

The path parameters carry their patterns, so OpenAPI states them and FastAPI refuses a bad gallery
name or id (400) before any handler runs; `Galleries` validates names again (facevlm.index.names)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from facevlm.errors import FacevlmError
from facevlm.index.names import GALLERY_NAME_PATTERN
from facevlm.serve.api_models import GALLERY_NAME_DOC, ID_PATTERN

bearer = HTTPBearer(auto_error=False, description="an API key of the recipe's api_keys (or $FACEVLM_API_KEYS)")

GalleryName = Annotated[str, Path(pattern=GALLERY_NAME_PATTERN, description=GALLERY_NAME_DOC, examples=["family"])]
FaceId = Annotated[str, Path(pattern=ID_PATTERN, description="a face id of the gallery (digits)")]
ImageId = Annotated[str, Path(pattern=ID_PATTERN, description="an image id of the gallery (digits)")]


def require_key(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:
    given = credentials.credentials.encode() if credentials else b""
    if not any(hmac.compare_digest(given, key.encode()) for key in request.app.state.keys):
        raise FacevlmError(
            "missing or invalid API key (Authorization: Bearer <key>)", code="invalid_api_key", status_code=401
        )


def secured(keys: list[str]) -> list[Any]:
    """Dependencies of a /v1 route: the key check, only when keys are configured (no keys = open,
    loopback only: ServeConfig refuses anything else), so OpenAPI declares auth exactly when it applies."""
    return [Security(require_key)] if keys else []
