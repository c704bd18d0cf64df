"""Request and response bodies of the identity routes (verification, recognition, clusters); the rules
of facevlm.serve.api_models apply (a rule the server enforces is a constraint of the model, so the schema
is the validator; models bound by the recipe's limits are built per app by the factories)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, create_model

from facevlm.index.cluster import METHODS
from facevlm.index.people import Cluster as ClusterRecord
from facevlm.index.people import ClusterRun
from facevlm.index.recognize import Identification, Threshold, Verification
from facevlm.serve.api_models import (
    GALLERY_NAME_DOC,
    ID_PATTERN,
    IDENTITY_MAX,
    TEXT_PATTERN,
    Face,
    GalleryName,
    Strict,
    image_uri,
)
from facevlm.serve.config import MAX_THRESHOLD

FaceIdText = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
ThresholdField = Annotated[float | None, Field(None, gt=0, le=MAX_THRESHOLD, description="same-person distance")]
TopK = Annotated[int, Field(5, ge=1, le=100, description="labelled faces to return at most")]
IdentityName = Annotated[
    str,
    StringConstraints(pattern=TEXT_PATTERN, min_length=1, max_length=IDENTITY_MAX),
    Field(description="who the people of the cluster are, in your own gallery (not blank)"),
]
THRESHOLD_DOC = (
    "the same-person distance used: the request's, else the server's (identity.threshold), else the "
    "identity model's published value (dlib-resnet-v1: 0.6, dlib's LFW figure)"
)


# -- requests ---------------------------------------------------------------------------------------
class UploadedFace(Strict):
    image: Any


class GalleryFace(Strict):
    """A face of a gallery, by id."""

    gallery: GalleryName = Field(description=GALLERY_NAME_DOC)
    face_id: FaceIdText = Field(description="a face id of that gallery (digits)")


class VerifyRequest(Strict):
    faces: Any
    threshold: ThresholdField = None


class IdentifyByImage(Strict):
    image: Any
    top_k: TopK = 5
    threshold: ThresholdField = None


class IdentifyByFace(Strict):
    face_id: FaceIdText = Field(description="a face of this gallery (it is not matched with itself)")
    top_k: TopK = 5
    threshold: ThresholdField = None


def verify_request(max_bytes: int, max_pixels: int) -> type[VerifyRequest]:
    upload = create_model(
        "UploadedFace",
        __base__=UploadedFace,
        image=(image_uri(max_bytes, max_pixels), Field(description="a photo of ONE face (or a face crop)")),
    )
    pair = Annotated[list[upload | GalleryFace], Field(min_length=2, max_length=2)]  # type: ignore[valid-type]
    return create_model(  # type: ignore[call-overload]
        "VerifyRequest",
        __base__=VerifyRequest,
        faces=(pair, Field(description="the two faces: each an uploaded photo or a gallery face")),
    )


def identify_request(max_bytes: int, max_pixels: int) -> Any:
    by_image = create_model(
        "IdentifyByImage",
        __base__=IdentifyByImage,
        image=(image_uri(max_bytes, max_pixels), Field(description="a photo of ONE face (or a face crop)")),
    )
    return by_image | IdentifyByFace


class ClusterRequest(Strict):
    threshold: ThresholdField = None
    method: Literal[METHODS] = Field("auto", description="facevlm.index.cluster: auto is chosen by measurement")  # type: ignore[valid-type]


class NameClusterRequest(Strict):
    identity: IdentityName


# -- responses --------------------------------------------------------------------------------------
class ThresholdInfo(BaseModel):
    threshold: float = Field(description=THRESHOLD_DOC)
    threshold_source: Literal["request", "config", "model"]
    threshold_reference: str | None = Field(description="the published figure, when the model's value is used")

    @staticmethod
    def fields(t: Threshold) -> dict[str, Any]:
        return {"threshold": t.value, "threshold_source": t.source, "threshold_reference": t.reference or None}


class VerifiedUpload(BaseModel):
    source: Literal["upload"] = "upload"
    box: list[float] | None = Field(description="the face found in the photo ([x0, y0, x1, y1]); null = used whole")


class VerifiedGalleryFace(BaseModel):
    source: Literal["gallery"] = "gallery"
    gallery: str
    face_id: str


VerifiedFace = VerifiedUpload | VerifiedGalleryFace  # no null ids: a response never names a face it does not have


class VerifyResponse(ThresholdInfo):
    object: Literal["face.verification"] = "face.verification"
    model: str = Field(description="the identity model")
    distance: float = Field(description="Euclidean distance between the two faces' identity descriptors")
    same: bool = Field(description="distance < threshold: the same person")
    faces: list[VerifiedFace]

    @classmethod
    def build(cls, result: Verification, faces: list[VerifiedFace]) -> VerifyResponse:
        return cls(
            model=result.model,
            distance=result.distance,
            same=result.same,
            faces=faces,
            **ThresholdInfo.fields(result.threshold),
        )


class IdentityMatch(Face):
    distance: float


class IdentifyResponse(ThresholdInfo):
    object: Literal["face.identification"] = "face.identification"
    gallery: str
    model: str
    status: Literal["known", "unknown"]
    identity: str | None = Field(description="the nearest labelled face's identity when under the threshold")
    nearest_distance: float | None = Field(description="distance to the nearest labelled face (null: none)")
    box: list[float] | None = Field(description="the face found in an uploaded photo; null = used whole")
    matches: list[IdentityMatch] = Field(description="labelled faces of the gallery under the threshold")

    @classmethod
    def build(cls, result: Identification, gallery: str, box: list[float] | None) -> IdentifyResponse:
        matches = [
            IdentityMatch(**Face.from_row(m.face, gallery).model_dump(), distance=m.distance) for m in result.matches
        ]
        return cls(
            gallery=gallery,
            model=result.model,
            status="known" if result.identity is not None else "unknown",
            identity=result.identity,
            nearest_distance=result.nearest_distance,
            box=box,
            matches=matches,
            **ThresholdInfo.fields(result.threshold),
        )


class Representative(BaseModel):
    face_id: str
    thumbnail_url: str | None


class ClusterResponse(BaseModel):
    object: Literal["face.cluster"] = "face.cluster"
    id: str
    run_id: str
    gallery: str
    identity: str | None
    size: int
    face_ids: list[str]
    representatives: list[Representative] = Field(description="its most typical faces (nearest its mean)")

    @classmethod
    def build(cls, cluster: ClusterRecord, gallery: str, thumbs: dict[int, bool]) -> ClusterResponse:
        base = f"/v1/galleries/{gallery}/faces"
        return cls(
            id=str(cluster.id),
            run_id=str(cluster.run_id),
            gallery=gallery,
            identity=cluster.identity,
            size=len(cluster.face_ids),
            face_ids=[str(i) for i in cluster.face_ids],
            representatives=[
                Representative(face_id=str(i), thumbnail_url=f"{base}/{i}/thumbnail" if thumbs.get(i) else None)
                for i in cluster.representatives
            ],
        )


class ClusterList(BaseModel):
    object: Literal["list"] = "list"
    gallery: str
    run_id: str | None = Field(description="the clustering run listed (null: the gallery was never clustered)")
    model: str | None
    method: str | None
    threshold: float | None
    created: int | None
    faces: int = Field(description="unlabelled faces the run clustered")
    data: list[ClusterResponse]

    @classmethod
    def build(cls, run: ClusterRun | None, gallery: str, thumbs: dict[int, bool]) -> ClusterList:
        if run is None:
            empty = dict.fromkeys(("run_id", "model", "method", "threshold", "created"))
            return cls(gallery=gallery, faces=0, data=[], **empty)
        return cls(
            gallery=gallery,
            run_id=str(run.id),
            model=run.model,
            method=run.method,
            threshold=run.threshold,
            created=int(run.created),
            faces=run.faces,
            data=[ClusterResponse.build(c, gallery, thumbs) for c in run.clusters],
        )
