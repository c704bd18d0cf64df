"""The facevlm gateway (FastAPI): OpenAI-compatible embeddings, face search and gallery management.

One process holds one FaceCLIP and the galleries it opens (each gallery is written by one process:
see facevlm.index.store). Heavy work (decoding, embedding, FAISS, SQLite) runs in the threadpool so the
event loop keeps answering; limits are enforced before anything is decoded. The later chat endpoints
extend this app (`create_app` returns a plain FastAPI object).
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
import time
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Query as Q, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from facevlm import __version__
from facevlm.errors import FacevlmError
from facevlm.index.ingest import FaceExperts, IngestConfig, Ingestor
from facevlm.index.search import Searcher, from_search_call
from facevlm.index.store import Gallery, gallery_dir
from facevlm.serve import api_models as m
from facevlm.serve.config import ServeConfig
from facevlm.serve.errors import error_response, install
from facevlm.serve.images import ImageLimits, decode_image, is_data_uri, parse_data_uri

BEARER = "Bearer "


class BodyLimit:
    """ASGI middleware: refuse bodies over `limit` bytes from Content-Length, and stop reading a
    chunked body once it passes the limit (a lying or missing header cannot exhaust memory)."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self._reject(scope, receive, send)
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise FacevlmError(f"request body exceeds {self.limit} bytes", code="request_too_large", status_code=413)
            return message

        await self.app(scope, limited, send)

    async def _reject(self, scope: dict, receive: Any, send: Any) -> None:
        response = error_response(f"request body exceeds {self.limit} bytes", 413, "request_too_large")
        await response(scope, receive, send)


class Galleries:
    """Open galleries of this process with their searcher and ingestor (opened on first use)."""

    def __init__(self, cfg: ServeConfig, embedder: Any):
        self.cfg, self.embedder = cfg, embedder
        self.lock = threading.Lock()
        self.open: dict[str, tuple[Gallery, Searcher, Ingestor]] = {}
        self.limits = ImageLimits(cfg.limits.max_image_bytes, cfg.limits.max_image_pixels)
        self.ingest_cfg = IngestConfig(detect=cfg.detect, label=cfg.label, limits=self.limits)
        self.experts = FaceExperts(self.ingest_cfg) if cfg.detect else None

    def path(self, name: str) -> Any:
        gallery_dir(name)  # validates the name (no paths through the API)
        return self.cfg.galleries_root() / name

    def get(self, name: str, create: bool = False) -> tuple[Gallery, Searcher, Ingestor]:
        with self.lock:
            if name in self.open:
                return self.open[name]
            path = self.path(name)
            if not (path / "gallery.json").is_file() and not create:
                raise FacevlmError(f"gallery {name!r} does not exist", code="gallery_not_found", status_code=404)
            gallery = Gallery.open(path, model=self.embedder.model, dim=self.embedder.dim, backend=self.cfg.backend)
            searcher = Searcher(gallery, self.embedder, pdv=self.cfg.pdv, sensitive=self.cfg.sensitive_attributes,
                                experts=self.experts)
            self.open[name] = (gallery, searcher, Ingestor(gallery, self.embedder, self.ingest_cfg))
            return self.open[name]

    def names(self) -> list[str]:
        root = self.cfg.galleries_root()
        return sorted(p.name for p in root.iterdir() if (p / "gallery.json").is_file()) if root.is_dir() else []

    def close(self) -> None:
        with self.lock:
            for gallery, _, _ in self.open.values():
                gallery.close()
            self.open.clear()


def create_app(cfg: ServeConfig, embedder: Any = None) -> FastAPI:
    """The gateway app. `embedder` defaults to FaceCLIP `cfg.model`, loaded at start-up."""
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if cfg.torch_threads:
            import torch

            torch.set_num_threads(cfg.torch_threads)
        from facevlm.index.embed import get_embedder

        emb = embedder or get_embedder(cfg.model, cfg.device)
        state["embedder"], state["galleries"] = emb, Galleries(cfg, emb)
        yield
        state["galleries"].close()

    app = FastAPI(title="facevlm gateway", version=__version__, lifespan=lifespan,
                  description="FaceCLIP embeddings (OpenAI-compatible), face galleries and face search.")
    app.add_middleware(BodyLimit, limit=cfg.limits.max_request_bytes)
    install(app)
    keys = cfg.keys()

    def auth(request: Request) -> None:
        if not keys:
            return
        header = request.headers.get("authorization", "")
        given = header[len(BEARER):].strip() if header.startswith(BEARER) else ""
        if not any(hmac.compare_digest(given.encode(), k.encode()) for k in keys):
            raise FacevlmError("missing or invalid API key (Authorization: Bearer <key>)", code="invalid_api_key",
                               status_code=401)

    def galleries() -> Galleries:
        return state["galleries"]

    secured = [Depends(auth)]

    @app.get("/healthz", response_model=m.Health)
    def healthz() -> m.Health:
        emb = state["embedder"]
        return m.Health(model=cfg.model_id, dim=emb.dim, galleries=galleries().names())

    @app.get("/v1/models", response_model=m.ModelList, dependencies=secured)
    def models() -> m.ModelList:
        return m.ModelList(data=[m.ModelCard(id=cfg.model_id, created=int(time.time()))])

    @app.post("/v1/embeddings", response_model=m.EmbeddingResponse, dependencies=secured)
    async def embeddings(body: m.EmbeddingRequest) -> m.EmbeddingResponse:
        emb = state["embedder"]
        if body.model != cfg.model_id:
            raise FacevlmError(f"model {body.model!r} is not served here; use {cfg.model_id!r}", code="model_not_found",
                               status_code=404)
        if body.dimensions is not None and body.dimensions != emb.dim:
            raise FacevlmError(f"dimensions: {cfg.model_id} embeddings have {emb.dim} dimensions, not {body.dimensions}")
        inputs = [body.input] if isinstance(body.input, str) else body.input
        if not inputs or len(inputs) > cfg.limits.max_inputs:
            raise FacevlmError(f"input: give 1..{cfg.limits.max_inputs} items", code="invalid_input")
        if any(not s.strip() for s in inputs):
            raise FacevlmError("input: empty strings cannot be embedded", code="invalid_input")
        limits = galleries().limits
        images = {i: decode_image(parse_data_uri(s, f"input[{i}]"), limits, f"input[{i}]").image
                  for i, s in enumerate(inputs) if is_data_uri(s)}
        texts = {i: s for i, s in enumerate(inputs) if i not in images}

        def run() -> tuple[np.ndarray, int]:
            out = np.zeros((len(inputs), emb.dim), np.float32)
            if images:
                out[list(images)] = emb.images(list(images.values()))
            if texts:
                out[list(texts)] = emb.texts(list(texts.values()))
            return out, emb.count_tokens(list(texts.values()))

        vectors, tokens = await run_in_threadpool(run)
        data = [m.Embedding(index=i, embedding=base64.b64encode(v.astype("<f4").tobytes()).decode()
                            if body.encoding_format == "base64" else v.tolist()) for i, v in enumerate(vectors)]
        return m.EmbeddingResponse(data=data, model=cfg.model_id, usage=m.Usage(prompt_tokens=tokens, total_tokens=tokens))

    search_body = {"requestBody": {"content": {
        "application/json": {"schema": {"type": "object", "description": "SearchCall arguments (docs/search-call.md)"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "arguments": {"type": "string", "description": "SearchCall arguments as JSON"},
            "image": {"type": "string", "format": "binary", "description": "query photo, referenced as image_1"}}}}},
        "required": True}}

    @app.post("/v1/faces/search", response_model=m.SearchResponse, dependencies=secured, openapi_extra=search_body)
    async def search(request: Request) -> m.SearchResponse:
        args, uploads = await _read_body(request, "arguments", cfg)
        limits = galleries().limits
        images = {f"image_{i + 1}": decode_image(data, limits, name).image for i, (name, data) in enumerate(uploads)}
        name, query = from_search_call(args, images, limits, allow_sensitive=cfg.sensitive_attributes)
        name = name or cfg.default_gallery
        _, searcher, _ = galleries().get(name)
        hits = await run_in_threadpool(searcher.run, query)
        summary = {"kind": query.kind, "top_k": query.top_k, "match": query.match if query.kind != "text" else None}
        return m.SearchResponse(gallery=name, query=summary, data=[m.SearchHit.from_hit(h, name) for h in hits])

    add_body = {"requestBody": {"content": {
        "application/json": {"schema": m.AddFacesRequest.model_json_schema()},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
            "identity": {"type": "string"}, "detect": {"type": "boolean"}}}}}, "required": True}}

    @app.post("/v1/galleries/{name}/faces", response_model=m.AddFacesResponse, status_code=201,
              dependencies=secured, openapi_extra=add_body)
    async def add_faces(name: str, request: Request) -> m.AddFacesResponse:
        fields, uploads = await _read_body(request, None, cfg)
        body = m.AddFacesRequest.model_validate(fields) if isinstance(fields, dict) and "image" in fields else None
        if body is not None:
            uris = [body.image] if isinstance(body.image, str) else body.image
            uploads = [(f"image[{i}]", parse_data_uri(u, f"image[{i}]")) for i, u in enumerate(uris)]
            identity, detect = body.identity, body.detect
        else:
            identity = (fields or {}).get("identity") or None
            detect = _form_bool((fields or {}).get("detect"), "detect")
        if not uploads:
            raise FacevlmError("give at least one image (JSON `image` data: URI or multipart `file`)", code="invalid_image")
        if len(uploads) > cfg.limits.max_files:
            raise FacevlmError(f"at most {cfg.limits.max_files} images per request", code="too_many_images")
        limits = galleries().limits
        for source, data in uploads:  # validate everything before anything is stored
            decode_image(data, limits, source)
        gallery, _, ingestor = galleries().get(name, create=True)

        def run() -> list[Any]:
            cfg_ = ingestor.cfg if detect is None else IngestConfig(**{**ingestor.cfg.__dict__, "detect": detect})
            worker = ingestor if detect is None else Ingestor(gallery, state["embedder"], cfg_)
            results = list(worker.add_bytes((s, d, identity) for s, d in uploads))
            gallery.flush()
            return results

        results = await run_in_threadpool(run)
        ids = [i for r in results for i in r.face_ids]
        rows = gallery.faces(ids)
        return m.AddFacesResponse(data=[m.Face.from_row(rows[i], name) for i in ids if i in rows],
                                  images=[m.AddedImage(source=r.source, status=r.status, face_ids=[str(i) for i in r.face_ids])
                                          for r in results])

    @app.get("/v1/galleries/{name}/faces", response_model=m.FaceList, dependencies=secured)
    def list_faces(name: str, limit: int = Q(20, ge=1, le=1000), after: str | None = None,
                   image_id: str | None = None) -> m.FaceList:
        gallery, _, _ = galleries().get(name)
        ids = gallery.list_ids(_face_id(after, "after") if after else 0, limit + 1,
                               _face_id(image_id, "image_id") if image_id else None)
        rows = gallery.faces(ids[:limit])
        data = [m.Face.from_row(rows[i], name) for i in ids[:limit] if i in rows]
        return m.FaceList(data=data, has_more=len(ids) > limit, first_id=data[0].id if data else None,
                          last_id=data[-1].id if data else None)

    @app.get("/v1/galleries/{name}/faces/{face_id}", response_model=m.Face, dependencies=secured)
    def get_face(name: str, face_id: str) -> m.Face:
        return m.Face.from_row(_row(galleries().get(name)[0], face_id), name)

    @app.get("/v1/galleries/{name}/faces/{face_id}/{kind}", dependencies=secured,
             responses={200: {"content": {"image/jpeg": {}}}})
    def face_image(name: str, face_id: str, kind: str) -> FileResponse:
        if kind not in ("thumbnail", "crop"):
            raise FacevlmError(f"{kind!r}: use thumbnail or crop", code="not_found", status_code=404)
        gallery = galleries().get(name)[0]
        row = _row(gallery, face_id)
        rel = row.thumb if kind == "thumbnail" else row.crop
        if not rel:
            raise FacevlmError(f"face {face_id} has no stored {kind}", code="not_found", status_code=404)
        return FileResponse(gallery.root / rel, media_type="image/jpeg")

    @app.delete("/v1/galleries/{name}/faces/{face_id}", response_model=m.Deleted, dependencies=secured)
    def delete_face(name: str, face_id: str) -> m.Deleted:
        gallery = galleries().get(name)[0]
        fid = _face_id(face_id, "face_id")
        if not gallery.remove_faces([fid]):
            raise FacevlmError(f"no face {face_id} in gallery {name!r}", code="not_found", status_code=404)
        gallery.flush()
        return m.Deleted(deleted=True, ids=[str(fid)])

    @app.delete("/v1/galleries/{name}/images/{image_id}", response_model=m.Deleted, dependencies=secured)
    def delete_image(name: str, image_id: str) -> m.Deleted:
        gallery = galleries().get(name)[0]
        ids = gallery.list_ids(0, 1 << 30, _face_id(image_id, "image_id"))
        if not ids:
            raise FacevlmError(f"no image {image_id} in gallery {name!r}", code="not_found", status_code=404)
        gallery.remove_faces(ids)
        gallery.flush()
        return m.Deleted(deleted=True, ids=[str(i) for i in ids])

    @app.get("/v1/galleries/{name}", dependencies=secured)
    def gallery_stats(name: str) -> dict[str, Any]:
        stats = galleries().get(name)[0].stats(sensitive=cfg.sensitive_attributes)
        return stats | {"object": "gallery", "name": name}

    return app


def _face_id(text: str, param: str) -> int:
    if not text.isdigit():
        raise FacevlmError(f"{param}: {text!r} is not a face/image id (digits)", code="invalid_id")
    return int(text)


def _row(gallery: Gallery, face_id: str) -> Any:
    fid = _face_id(face_id, "face_id")
    row = gallery.faces([fid]).get(fid)
    if row is None:
        raise FacevlmError(f"no face {face_id} in gallery {gallery.root.name!r}", code="not_found", status_code=404)
    return row


def _form_bool(value: Any, param: str) -> bool | None:
    if value in (None, ""):
        return None
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise FacevlmError(f"{param}: {value!r} is not a boolean")


async def _read_body(request: Request, json_field: str | None, cfg: ServeConfig) -> tuple[Any, list[tuple[str, bytes]]]:
    """(JSON object or form fields, [(filename, bytes)]) from a JSON or multipart request."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=cfg.limits.max_files, max_fields=32,
                                      max_part_size=cfg.limits.max_image_bytes)
        except FacevlmError:
            raise
        except Exception as exc:  # starlette raises MultiPartException / HTTPException on bad forms
            raise FacevlmError(f"malformed multipart body ({getattr(exc, 'detail', exc)})") from None
        uploads = [(item.filename or key, await item.read()) for key, item in form.multi_items()
                   if isinstance(item, UploadFile)]
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        if json_field is not None:
            fields = _parse_json(fields.get(json_field, ""), json_field)
        return fields, uploads
    if ctype not in ("application/json", ""):
        raise FacevlmError(f"content-type {ctype!r}: send application/json or multipart/form-data",
                           code="unsupported_media_type", status_code=415)
    return _parse_json((await request.body()).decode("utf-8", "replace"), "body"), []


def _parse_json(text: str, where: str) -> dict[str, Any]:
    if not text.strip():
        raise FacevlmError(f"{where}: empty; expected a JSON object", code="invalid_request")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FacevlmError(f"{where}: malformed JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
    if not isinstance(value, dict):
        raise FacevlmError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value
