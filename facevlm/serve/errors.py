"""Every gateway error as OpenAI's error JSON, so OpenAI clients surface our messages unchanged:

    {"error": {"message": "...", "type": "invalid_request_error", "param": "input", "code": "..."}}

4xx for anything the caller can fix (FacevlmError carries its own status), 500 `server_error` only for
bugs. Validation errors of FastAPI/pydantic become 400 with the offending field as `param`. Messages
never carry a server path: the gallery code names galleries, and `install(app, hidden)` blanks the
given directories (galleries root, $FACEVLM_HOME) out of any message as a last line of defence.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from facevlm.errors import FacevlmError

log = logging.getLogger("facevlm.serve")

TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(message: str, status: int, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    kind = "server_error" if status >= 500 else TYPES.get(status, "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(
    message: str, status: int, code: str | None = None, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(error_body(message, status, code, param), status_code=status, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method the API documents for this request's path (starlette's 405 names one route's)."""
    table = getattr(request.app.state, "allowed_methods", None)
    if table is None:
        table = request.app.state.allowed_methods = [
            (re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$"), {m.upper() for m in ops})
            for path, ops in request.app.openapi()["paths"].items()
        ]
    return sorted({m for regex, methods in table if regex.match(request.url.path) for m in methods})


def _validation_message(exc: RequestValidationError | ValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return f"malformed JSON body: {first.get('ctx', {}).get('error', first.get('msg'))}", None
    if first.get("type") == "missing" and not loc:
        return "request body is empty; expected a JSON object", None
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{param or 'body'}: {first.get('msg', 'invalid value')}{more}", param


def install(app: FastAPI, hidden: list[str] | None = None) -> None:
    secrets = sorted({h for h in hidden or [] if len(h) > 1}, key=len, reverse=True)

    def clean(message: str) -> str:
        for path in secrets:
            message = message.replace(path, "<server>")
        return " ".join(message.split())  # one line

    @app.exception_handler(FacevlmError)
    async def _facevlm(_: Request, exc: FacevlmError) -> JSONResponse:
        status = exc.status_code if 400 <= exc.status_code < 600 else 400
        headers = getattr(exc, "headers", None)  # e.g. Retry-After on 429 server_busy
        return error_response(clean(str(exc)), status, exc.code, getattr(exc, "param", None), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return error_response(clean(message), 400, "invalid_request", param)

    @app.exception_handler(ValidationError)
    async def _model_invalid(_: Request, exc: ValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return error_response(clean(message), 400, "invalid_request", param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "invalid_api_key"}.get(exc.status_code)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # starlette names one route's methods; a path may have several routes
            headers["Allow"] = ", ".join(allowed_methods(request))
        return error_response(str(exc.detail), exc.status_code, code, headers=headers)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(f"internal error ({type(exc).__name__})", 500, "internal_error")
