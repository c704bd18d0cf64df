"""POST /v1/faces/verify (are two faces one person?) and POST /v1/galleries/{name}/identify (who is this,
among the people labelled in this gallery?), on the served identity model (facevlm.index.recognize).

An uploaded photo must show exactly one face (400 `no_face` / `multiple_faces`; with detection off on
the server it is a face crop, used whole); a gallery face is named by gallery and id (404 for an unknown
gallery or face; 409 for a gallery without identity vectors, or with another identity model's).
Decoding, detection and the identity forward run in the threadpool."""

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from facevlm.image import decode_image, parse_data_uri
from facevlm.index.recognize import gallery_face, identify, resolve_threshold, upload_face, verify
from facevlm.serve import api_identity as m
from facevlm.serve.body import json_only
from facevlm.serve.config import ServeConfig
from facevlm.serve.deps import GalleryName, secured
from facevlm.serve.openapi import errors


def router(cfg: ServeConfig) -> APIRouter:
    limits = cfg.limits
    Verify = m.verify_request(limits.max_image_bytes, limits.max_image_pixels)
    Identify = m.identify_request(limits.max_image_bytes, limits.max_image_pixels)
    auth = (401,) if cfg.keys() else ()
    r = APIRouter(dependencies=[*secured(cfg.keys()), Depends(json_only)], tags=["identity"], strict_content_type=False)

    @r.post("/v1/faces/verify", response_model=m.VerifyResponse, responses=errors(400, *auth, 404, 409, 413, 415))
    async def verify_faces(body: Verify, request: Request) -> m.VerifyResponse:  # type: ignore[valid-type]
        """Distance between two faces' identity descriptors and the same-person decision."""
        return await run_in_threadpool(run_verify, request.app.state, body)

    @r.post(
        "/v1/galleries/{name}/identify",
        response_model=m.IdentifyResponse,
        responses=errors(400, *auth, 404, 409, 413, 415),
    )
    async def identify_face(
        name: GalleryName,
        body: Identify,  # type: ignore[valid-type]
        request: Request,
    ) -> m.IdentifyResponse:
        """The identity of the nearest face labelled in this gallery within the threshold, else unknown."""
        return await run_in_threadpool(run_identify, request.app.state, name, body)

    return r


def _upload(state: Any, uri: str, where: str) -> Any:
    galleries = state.galleries
    image = decode_image(parse_data_uri(uri, where), galleries.limits, where).image
    return upload_face(galleries.identity, galleries.experts, image, where)


def run_verify(state: Any, body: m.VerifyRequest) -> m.VerifyResponse:
    galleries = state.galleries
    model = galleries.identity
    found, described = [], []
    for i, face in enumerate(body.faces):
        if isinstance(face, m.GalleryFace):
            with galleries.use(face.gallery) as opened:
                found.append(gallery_face(opened.gallery, face.gallery, int(face.face_id), model))
            described.append(m.VerifiedGalleryFace(gallery=face.gallery, face_id=face.face_id))
        else:
            found.append(_upload(state, face.image, f"faces[{i}].image"))
            described.append(m.VerifiedUpload(box=found[-1].box))
    threshold = resolve_threshold(model, state.config.identity.threshold, body.threshold)
    return m.VerifyResponse.build(verify(found[0], found[1], threshold, model.name), described)


def run_identify(state: Any, name: str, body: Any) -> m.IdentifyResponse:
    galleries = state.galleries
    model = galleries.identity
    threshold = resolve_threshold(model, state.config.identity.threshold, body.threshold)
    query = None if isinstance(body, m.IdentifyByFace) else _upload(state, body.image, "image")
    with galleries.use(name) as opened:
        if query is None:
            query = gallery_face(opened.gallery, name, int(body.face_id), model)
        result = identify(opened.gallery, name, query, threshold, model.name, body.top_k)
    return m.IdentifyResponse.build(result, name, query.box)
