"""Request and response bodies of the gateway (pydantic v2); they are also its OpenAPI schema.

Shapes follow OpenAI where an OpenAI endpoint exists (`/v1/embeddings`, `/v1/models`, list objects
with `has_more`/`first_id`/`last_id`), so existing clients and tooling work unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from facevlm.index.search import Hit
from facevlm.index.store import FaceRow


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbeddingRequest(Strict):
    input: str | list[str] = Field(description="Text, or an image as a data: URI (data:image/jpeg;base64,...), "
                                               "or a list of them (mixed allowed).")
    model: str
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, description="Must equal the model's dimension if given.")
    user: str | None = None


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "facevlm"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Attribute(BaseModel):
    name: str
    value: str
    origin: str
    prob: float
    model: str = ""


class Face(BaseModel):
    object: Literal["face"] = "face"
    id: str
    gallery: str
    image_id: str | None
    box: list[float] | None = Field(description="[x0, y0, x1, y1] in pixels of the source image; null = whole image")
    landmarks: list[list[float]]
    det_score: float
    identity: str | None
    source: str
    attributes: list[Attribute]
    thumbnail_url: str | None
    crop_url: str | None
    created: int

    @classmethod
    def from_row(cls, row: FaceRow, gallery: str) -> "Face":
        base = f"/v1/galleries/{gallery}/faces/{row.id}"
        return cls(id=str(row.id), gallery=gallery, image_id=None if row.image_id is None else str(row.image_id),
                   box=row.box, landmarks=row.landmarks, det_score=row.det_score, identity=row.identity,
                   source=row.source,
                   attributes=[Attribute(name=a.name, value=a.value, origin=a.origin, prob=a.prob, model=a.model)
                               for a in row.attributes],
                   thumbnail_url=f"{base}/thumbnail" if row.thumb else None,
                   crop_url=f"{base}/crop" if row.crop else None, created=int(row.added))


class SearchHit(Face):
    object: Literal["face"] = "face"
    score: float
    rank: int

    @classmethod
    def from_hit(cls, hit: Hit, gallery: str) -> "SearchHit":
        return cls(**Face.from_row(hit.face, gallery).model_dump(), score=hit.score, rank=hit.rank)


class SearchResponse(BaseModel):
    object: Literal["list"] = "list"
    gallery: str
    query: dict[str, Any]
    data: list[SearchHit]


class AddFacesRequest(Strict):
    image: str | list[str] = Field(description="data: URI(s) of the image(s) to add")
    identity: str | None = Field(default=None, description="Who the person is, in your own gallery (optional)")
    detect: bool | None = Field(default=None, description="false: each image is one pre-cropped face")


class AddedImage(BaseModel):
    source: str
    status: str
    face_ids: list[str]


class AddFacesResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Face]
    images: list[AddedImage]


class FaceList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Face]
    has_more: bool
    first_id: str | None
    last_id: str | None


class Deleted(BaseModel):
    object: Literal["face.deleted"] = "face.deleted"
    deleted: bool
    ids: list[str]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    dim: int
    galleries: list[str]
