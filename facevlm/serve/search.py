"""POST /v1/faces/search: run a `face_search` call (facevlm.data.search_call) on a gallery.

JSON: the body is the call's arguments. Multipart: `arguments` (the same object, as a JSON part) and
`image`, the query photo, referred to as "image_1". Decoding, gallery opening, embedding and FAISS all
run in the threadpool.

The published schema is the call's own schema (which already carries the gallery-name, face-id and
non-blank-text patterns of facevlm.schema) tightened by the rules this gateway adds on top of it
(`arguments_schema`), so that a schema-valid call is never refused: image references (data: URIs within
the recipe's byte limit in JSON, "image_1" only with an upload), sensitive filters only where the server
allows them.
"""

import copy
import re
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from facevlm.data.search_call import IMAGE_PREFIXES, TOOL_NAME, SearchArguments, SearchCall
from facevlm.errors import FacevlmError
from facevlm.image import decode_image
from facevlm.index.search import from_search_call
from facevlm.schema import SENSITIVE
from facevlm.serve import api_models as m
from facevlm.serve.body import content_type, json_object, parse_json, read_form, read_json
from facevlm.serve.config import ServeConfig
from facevlm.serve.deps import secured
from facevlm.serve.openapi import body, errors, schema

SEARCH_DATA_URI = rf"^(?:{'|'.join(re.escape(p) for p in IMAGE_PREFIXES)}){m.BASE64}$"
UPLOAD_REF = "^image_1$"


def router(cfg: ServeConfig) -> APIRouter:
    auth = (401,) if cfg.keys() else ()
    r = APIRouter(dependencies=secured(cfg.keys()), tags=["search"])
    form = {
        "type": "object",
        "required": ["arguments", "image"],
        "properties": {
            "arguments": arguments_schema(cfg, uploads=True),
            "image": {"type": "string", "format": "binary", "description": "the query photo, referred to as image_1"},
        },
    }
    doc = body(
        {"application/json": arguments_schema(cfg, uploads=False), "multipart/form-data": form},
        "face_search arguments (docs/search-call.md); multipart to upload the query photo",
        encodings={"multipart/form-data": {"arguments": {"contentType": "application/json"}}},
    )

    @r.post(
        "/v1/faces/search",
        response_model=m.SearchResponse,
        openapi_extra=doc,
        responses=errors(400, *auth, 404, 409, 413, 415),
    )
    async def search(request: Request) -> m.SearchResponse:
        if content_type(request) == "multipart/form-data":
            fields, uploads = await read_form(request, 1, cfg.limits.max_image_bytes)
            if "arguments" not in fields:
                raise FacevlmError(
                    "arguments: missing multipart field (the search call as JSON)", code="invalid_request"
                )
            if not uploads:  # multipart exists to upload the query photo; a search without one is JSON
                raise FacevlmError("image: missing multipart file (the query photo, image_1)", code="invalid_image")
            args = await run_in_threadpool(parse_json, fields["arguments"], "arguments")
            return await run_in_threadpool(run, request.app.state, args, uploads)
        return await read_json(request, lambda args: run(request.app.state, args, []))

    return r


def run(state: Any, args: Any, uploads: list[tuple[str, bytes]]) -> m.SearchResponse:
    cfg, galleries = state.config, state.galleries
    args = json_object(args, "arguments")
    try:  # strict: a JSON string is not a number, 1 is not `true`, as the schema says
        arguments = SearchArguments.model_validate(args, strict=True)
    except ValidationError:
        SearchCall.parse({"name": TOOL_NAME, "arguments": args})  # raises the call's own one-line message...
        raise  # ...unless only the strict reading refused it
    images = {
        f"image_{i + 1}": decode_image(data, galleries.limits, source).image for i, (source, data) in enumerate(uploads)
    }
    call = SearchCall(name=TOOL_NAME, arguments=arguments)
    name, query = from_search_call(call, images, galleries.limits, allow_sensitive=cfg.sensitive_attributes)
    with galleries.use(name) as opened:
        hits = opened.searcher.run(query)
    summary = m.SearchSummary(kind=query.kind, top_k=query.top_k, match=query.match if query.kind != "text" else None)
    return m.SearchResponse(gallery=name, query=summary, data=[m.SearchHit.from_hit(h, name) for h in hits])


def arguments_schema(cfg: ServeConfig, uploads: bool) -> dict[str, Any]:
    """The call's JSON schema as this gateway enforces it (see the module docstring). The upload variant's
    definitions are named Upload*, since its image references differ."""
    prefix = "Upload" if uploads else ""
    out = copy.deepcopy(schema(SearchArguments, prefix))
    defs = out["$defs"]
    ref = defs[f"{prefix}FaceRef"]
    limits = cfg.limits
    data_uri = {
        "type": "string",
        "format": m.IMAGE_FORMAT,
        "pattern": SEARCH_DATA_URI,
        "maxLength": m.max_uri_length(limits.max_image_bytes),
        "description": f"{m.IMAGE_RULE} (png, jpeg or webp); at most {limits.max_image_bytes} bytes",
        "examples": [m.EXAMPLE_IMAGE],
    }
    refs = [{"type": "string", "pattern": UPLOAD_REF, "description": "the uploaded `image` part"}] if uploads else []
    ref["properties"]["image"]["anyOf"] = [*refs, data_uri, {"type": "null"}]
    ref["oneOf"] = [
        {"required": ["face_id"], "properties": {"face_id": {"type": "string"}}},
        {"required": ["image"], "properties": {"image": {"type": "string"}}},
    ]
    if not cfg.sensitive_attributes:
        props = defs[f"{prefix}Filters"]["properties"]
        for name in SENSITIVE & set(props):
            del props[name]
    return out
