"""/v1/galleries/{name}…: add photos, list, fetch, erase faces and images, show or erase a whole gallery.

Names only, never paths: `name` carries GALLERY_NAME_PATTERN (facevlm.index.names) and is resolved under
the configured galleries root by facevlm.serve.state.Galleries. Every route that touches a gallery is
sync (FastAPI runs it in the threadpool) or hands its work to the threadpool, so SQLite, FAISS, files and
decoding never block the event loop.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from facevlm.errors import FacevlmError
from facevlm.image import decode_image, parse_data_uri
from facevlm.index.ingest import IngestConfig
from facevlm.serve import api_models as m
from facevlm.serve.body import content_type, form_bool, json_object, read_form, read_json
from facevlm.serve.config import ServeConfig
from facevlm.serve.deps import FaceId, GalleryName, ImageId, secured
from facevlm.serve.openapi import body, errors

Cursor = Annotated[str | None, Query(pattern=m.ID_PATTERN, description="a face id: list the faces after it")]
ImageFilter = Annotated[str | None, Query(pattern=m.ID_PATTERN, description="only the faces of this image id")]


def router(cfg: ServeConfig) -> APIRouter:
    limits = cfg.limits
    Body = m.add_faces_request(limits.max_files, limits.max_image_bytes, limits.max_image_pixels, cfg.detect)
    auth = (401,) if cfg.keys() else ()
    r = APIRouter(dependencies=secured(cfg.keys()), tags=["galleries"])
    doc = body(
        {"application/json": Body, "multipart/form-data": m.add_faces_form(limits.max_files, cfg.detect)},
        "photos to add (JSON data: URIs, or multipart `file` parts); creates the gallery",
    )
    reads = errors(400, *auth, 404, 409, 413)

    @r.post(
        "/v1/galleries/{name}/faces",
        response_model=m.AddFacesResponse,
        status_code=201,
        openapi_extra=doc,
        responses=errors(400, *auth, 409, 413, 415),
    )
    async def add_faces(name: GalleryName, request: Request) -> m.AddFacesResponse:
        if content_type(request) == "multipart/form-data":
            fields, uploads = await read_form(request, limits.max_files, limits.max_image_bytes)
            return await run_in_threadpool(add, request.app.state, name, Body, None, fields, uploads)
        return await read_json(request, lambda value: add(request.app.state, name, Body, value, {}, []))

    @r.get("/v1/galleries/{name}/faces", response_model=m.FaceList, responses=reads)
    def list_faces(
        request: Request,
        name: GalleryName,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
        after: Cursor = None,
        image_id: ImageFilter = None,
    ) -> m.FaceList:
        with request.app.state.galleries.use(name) as opened:
            gallery = opened.gallery
            ids = gallery.list_ids(int(after or 0), limit + 1, None if image_id is None else int(image_id))
            rows = gallery.faces(ids[:limit])
        data = [m.Face.from_row(rows[i], name) for i in ids[:limit] if i in rows]
        return m.FaceList(
            data=data,
            has_more=len(ids) > limit,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
        )

    @r.get("/v1/galleries/{name}/faces/{face_id}", response_model=m.Face, responses=reads)
    def get_face(request: Request, name: GalleryName, face_id: FaceId) -> m.Face:
        with request.app.state.galleries.use(name) as opened:
            return m.Face.from_row(_row(opened.gallery, name, face_id), name)

    @r.get(
        "/v1/galleries/{name}/faces/{face_id}/{kind}",
        response_class=Response,
        responses={
            200: {
                "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
                "description": "the stored JPEG",
            },
            **reads,
        },
    )
    def face_image(
        request: Request, name: GalleryName, face_id: FaceId, kind: Literal["thumbnail", "crop"]
    ) -> Response:
        with request.app.state.galleries.use(name) as opened:
            row = _row(opened.gallery, name, face_id)
            rel = row.thumb if kind == "thumbnail" else row.crop
            if not rel:
                raise FacevlmError(f"face {face_id} has no stored {kind}", code="not_found", status_code=404)
            data = (opened.gallery.root / rel).read_bytes()  # read while held: an erasure waits for us
        return Response(data, media_type="image/jpeg")

    @r.delete("/v1/galleries/{name}/faces/{face_id}", response_model=m.Deleted, responses=reads)
    def delete_face(request: Request, name: GalleryName, face_id: FaceId) -> m.Deleted:
        with request.app.state.galleries.use(name) as opened:
            if not opened.gallery.remove_faces([int(face_id)]):
                raise FacevlmError(f"no face {face_id} in gallery {name!r}", code="not_found", status_code=404)
            opened.gallery.flush()
        return m.Deleted(deleted=True, ids=[face_id])

    @r.delete("/v1/galleries/{name}/images/{image_id}", response_model=m.Deleted, responses=reads)
    def delete_image(request: Request, name: GalleryName, image_id: ImageId) -> m.Deleted:
        with request.app.state.galleries.use(name) as opened:
            gallery = opened.gallery
            ids = gallery.list_ids(0, 1 << 30, int(image_id))
            if not ids:
                raise FacevlmError(f"no image {image_id} in gallery {name!r}", code="not_found", status_code=404)
            gallery.remove_faces(ids)
            gallery.flush()
        return m.Deleted(deleted=True, ids=[str(i) for i in ids])

    @r.get("/v1/galleries/{name}", response_model=m.GalleryStats, responses=reads)
    def gallery_stats(request: Request, name: GalleryName) -> m.GalleryStats:
        with request.app.state.galleries.use(name) as opened:
            stats = opened.gallery.stats(sensitive=cfg.sensitive_attributes)
        stats |= {"name": name, "model": cfg.model_id}  # the served id (Galleries refuses other models): no path
        return m.GalleryStats(**{k: v for k, v in stats.items() if k in m.GalleryStats.model_fields})

    @r.delete("/v1/galleries/{name}", response_model=m.GalleryDeleted, responses=reads)
    def delete_gallery(request: Request, name: GalleryName) -> m.GalleryDeleted:
        """Erase the whole gallery: every vector, metadata row, original, crop and thumbnail."""
        return m.GalleryDeleted(id=name, deleted=True, faces=request.app.state.galleries.delete(name))

    return r


def add(
    state: Any,
    name: str,
    model: type[m.AddFacesRequest],
    value: Any,
    fields: dict[str, str],
    uploads: list[tuple[str, bytes]],
) -> m.AddFacesResponse:
    """Validate every image before anything is stored, then ingest them into gallery `name` (created)."""
    galleries = state.galleries
    if value is not None:
        req = model.model_validate(json_object(value, "body"), strict=True)
        uris = [req.image] if isinstance(req.image, str) else req.image
        uploads = [(f"image[{i}]", parse_data_uri(u, f"image[{i}]")) for i, u in enumerate(uris)]
        identity, detect = req.identity, req.detect
    else:
        identity = fields.get("identity") or None
        if identity is not None and len(identity) > m.IDENTITY_MAX:
            raise FacevlmError(f"identity: at most {m.IDENTITY_MAX} characters", code="invalid_request")
        detect = form_bool(fields.get("detect"), "detect")
        if not uploads:
            raise FacevlmError(
                "give at least one image (JSON `image` data: URI or multipart `file`)", code="invalid_image"
            )
    if detect and not state.config.detect:
        raise FacevlmError("detect: face detection is off on this server (recipe detect: false)")
    for source, data in uploads:
        decode_image(data, galleries.limits, source)
    with galleries.use(name, create=True) as opened:
        gallery, ingestor = opened.gallery, opened.ingestor
        if detect is not None and detect != ingestor.cfg.detect:
            ingestor = galleries.ingestor(gallery, IngestConfig(**{**ingestor.cfg.__dict__, "detect": detect}))
        results = list(ingestor.add_bytes((s, d, identity) for s, d in uploads))
        gallery.flush()
        ids = [i for r in results for i in r.face_ids]
        rows = gallery.faces(ids)
    return m.AddFacesResponse(
        data=[m.Face.from_row(rows[i], name) for i in ids if i in rows],
        images=[
            m.AddedImage(source=m.source_name(r.source), status=r.status, face_ids=[str(i) for i in r.face_ids])
            for r in results
        ],
    )


def _row(gallery: Any, name: str, face_id: str) -> Any:
    row = gallery.faces([int(face_id)]).get(int(face_id))
    if row is None:
        raise FacevlmError(f"no face {face_id} in gallery {name!r}", code="not_found", status_code=404)
    return row
