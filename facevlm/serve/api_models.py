"""Request and response bodies of the gateway (pydantic v2); they are also its OpenAPI schema.

Shapes follow OpenAI where an OpenAI endpoint exists (`/v1/embeddings`, `/v1/models`, list objects
with `has_more`/`first_id`/`last_id`, the error object), so existing clients and tooling work unchanged.

A rule the server enforces is a constraint of these models, not a check in a handler: the request models
whose bounds come from the recipe (`limits`, the model's dimension, whether detection is on) are built
per app by the factories below, so the schema a client reads and the validator that refuses its request
are the same object, and a schema-valid request is never refused for an unstated rule.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, create_model

from facevlm.index.search import Hit
from facevlm.index.store import FaceRow
from facevlm.schema import FACE_ID_PATTERN, GALLERY_NAME_PATTERN, GALLERY_NAME_RULE, NON_BLANK_PATTERN

ID_PATTERN = FACE_ID_PATTERN
IMAGE_FORMAT = "image-data-uri"  # custom `format`: a base64 data: URI whose bytes decode as an image
IMAGE_MIMES = ("png", "jpeg", "jpg", "gif", "webp", "bmp", "tiff")
BASE64 = r"(?:[A-Za-z0-9+/]{4}){3,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"  # strict, padded, >= 9 bytes
IMAGE_DATA_URI_PATTERN = rf"^data:image/(?:{'|'.join(IMAGE_MIMES)});base64,{BASE64}$"
_URI_HEAD = re.compile(rf"data:image/(?:{'|'.join(IMAGE_MIMES)});base64,")
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/]*={0,2}")
TEXT_PATTERN = NON_BLANK_PATTERN
IMAGE_RULE = (
    "a base64 data: URI (data:image/png;base64,...) of a JPEG, PNG, GIF, WebP, BMP or TIFF (sniffed "
    "from its bytes, not its declared type) of at least 8 pixels a side"
)
IDENTITY_MAX = 200
EXAMPLE_IMAGE = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAIElEQVR42mM8URHAgA0w"
    "MeAAlEj4bHiDXWJLgAhldgAALKYEoE47pAYAAAAASUVORK5CYII="
)  # 8x8 PNG: the smallest image accepted

GalleryName = Annotated[str, StringConstraints(pattern=GALLERY_NAME_PATTERN)]
GALLERY_NAME_DOC = f"gallery name: {GALLERY_NAME_RULE}"


class Strict(BaseModel):
    """Request bodies: unknown keys are errors, and values are taken as JSON types (a string is not a
    number, 1 is not true), as their JSON schema says."""

    model_config = ConfigDict(extra="forbid", strict=True)


def is_image_data_uri(text: str) -> bool:
    """Whether `text` matches IMAGE_DATA_URI_PATTERN, tested in one pass over a single character class: Python's
    `re` runs the pattern's repeated 4-character group ~6x slower (3.8 ms for a 620 kB face crop, most of the
    gateway's CPU per chat request); pydantic's own regex engine, which checks the pattern on upload fields,
    has no such cost."""
    head = _URI_HEAD.match(text)
    if head is None:
        return False
    payload = text[head.end() :]
    if len(payload) % 4 or not _BASE64_CHARS.fullmatch(payload):
        return False
    full_quads = len(payload) // 4 - (1 if payload.endswith("=") else 0)
    return full_quads >= 3  # >= 9 bytes, as BASE64 says


def max_uri_length(max_bytes: int) -> int:
    """Longest data: URI whose payload cannot exceed `max_bytes` (prefix + 4 chars per 3 bytes)."""
    return len("data:image/jpeg;base64,") + 4 * (max_bytes // 3)


def image_uri(max_bytes: int, max_pixels: int) -> Any:
    """The type of one uploaded image as a data: URI, bounded by the server's byte limit."""
    length = max_uri_length(max_bytes)
    doc = f"{IMAGE_RULE}; at most {max_bytes} bytes and {max_pixels} pixels"
    return Annotated[
        str,
        StringConstraints(pattern=IMAGE_DATA_URI_PATTERN, max_length=length),
        WithJsonSchema(
            {
                "type": "string",
                "format": IMAGE_FORMAT,
                "pattern": IMAGE_DATA_URI_PATTERN,
                "maxLength": length,
                "description": doc,
                "examples": [EXAMPLE_IMAGE],
            }
        ),
    ]


def _not_data_uri(text: str) -> str:
    if text.startswith("data:"):
        raise ValueError(f"a string starting with 'data:' is an image and must be {IMAGE_RULE}")
    return text


Text = Annotated[
    str,
    StringConstraints(pattern=TEXT_PATTERN),
    AfterValidator(_not_data_uri),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": TEXT_PATTERN,
            "not": {"pattern": "^data:"},
            "description": "text to embed: not blank, not starting with 'data:'",
        }
    ),
]


class EmbeddingRequest(Strict):
    """OpenAI's embeddings request; `embedding_request()` binds it to the served model and limits."""

    input: Any
    model: str = Field(description="the id listed by /v1/models (any other id: 404 model_not_found)")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None


def embedding_request(
    model_id: str, dim: int, max_inputs: int, max_bytes: int, max_pixels: int
) -> type[EmbeddingRequest]:
    item = Annotated[Text | image_uri(max_bytes, max_pixels), Field()]
    many = Annotated[list[item], Field(min_length=1, max_length=max_inputs)]  # type: ignore[valid-type]
    return create_model(  # type: ignore[call-overload]
        "EmbeddingRequest",
        __base__=EmbeddingRequest,
        input=(
            item | many,
            Field(description=f"a text, an image ({IMAGE_RULE}), or a list of 1..{max_inputs} of them (mixed allowed)"),
        ),
        model=(
            str,
            Field(description="the id listed by /v1/models (any other id: 404 model_not_found)", examples=[model_id]),
        ),
        dimensions=(
            Literal[dim] | None,  # type: ignore[valid-type]
            Field(None, description=f"if given, must be {dim}: CLIP embeddings cannot be truncated"),
        ),
    )


class AddFacesRequest(Strict):
    image: Any
    identity: str | None = None
    detect: bool | None = None


def add_faces_request(max_files: int, max_bytes: int, max_pixels: int, detect: bool) -> type[AddFacesRequest]:
    one = image_uri(max_bytes, max_pixels)
    many = Annotated[list[one], Field(min_length=1, max_length=max_files)]  # type: ignore[valid-type]
    detect_type: Any = (
        bool | None
        if detect
        else Annotated[bool, AfterValidator(_detection_off), WithJsonSchema({"type": "boolean", "const": False})] | None
    )
    return create_model(  # type: ignore[call-overload]
        "AddFacesRequest",
        __base__=AddFacesRequest,
        image=(one | many, Field(description=f"the image(s) to add: 1..{max_files}")),
        identity=(
            str | None,
            Field(
                None,
                min_length=1,
                max_length=IDENTITY_MAX,
                description="who the person is, in your own gallery (optional)",
            ),
        ),
        detect=(
            detect_type,
            Field(
                None,
                description="false: each image is one pre-cropped face"
                + ("" if detect else " (face detection is off on this server)"),
            ),
        ),
    )


def _detection_off(value: bool) -> bool:
    if value:  # a Literal[False] would take 0 for False, which the schema's boolean does not
        raise ValueError("face detection is off on this server (recipe detect: false)")
    return value


def add_faces_form(max_files: int, detect: bool) -> dict[str, Any]:
    """The multipart form of an add request (parsed by hand, so its schema is written out here)."""
    return {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_files,
                "description": f"{1}..{max_files} images",
                "items": {"type": "string", "format": "binary"},
            },
            "identity": {"type": "string", "maxLength": IDENTITY_MAX, "description": "who the person is (optional)"},
            "detect": {
                "type": "boolean",
                **({} if detect else {"enum": [False]}),
                "description": "false: each image is one pre-cropped face",
            },
        },
    }


# -- responses ----------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """OpenAI's error object: every 4xx (and a 5xx bug) answers this."""

    error: ErrorDetail


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


def source_name(source: str) -> str:
    """The file name an image was added under. The CLI records local paths, which must not leave the
    server; an upload's name is the client's own."""
    return PureWindowsPath(PurePosixPath(source).name).name if source else source


class Face(BaseModel):
    object: Literal["face"] = "face"
    id: str
    gallery: str
    image_id: str | None
    box: list[float] | None = Field(description="[x0, y0, x1, y1] in pixels of the source image; null = whole image")
    landmarks: list[list[float]]
    det_score: float
    identity: str | None
    source: str = Field(description="file name the image was added under")
    attributes: list[Attribute]
    thumbnail_url: str | None
    crop_url: str | None
    created: int

    @classmethod
    def from_row(cls, row: FaceRow, gallery: str) -> Face:
        base = f"/v1/galleries/{gallery}/faces/{row.id}"
        return cls(
            id=str(row.id),
            gallery=gallery,
            image_id=None if row.image_id is None else str(row.image_id),
            box=row.box,
            landmarks=row.landmarks,
            det_score=row.det_score,
            identity=row.identity,
            source=source_name(row.source),
            attributes=[
                Attribute(name=a.name, value=a.value, origin=a.origin, prob=a.prob, model=a.model)
                for a in row.attributes
            ],
            thumbnail_url=f"{base}/thumbnail" if row.thumb else None,
            crop_url=f"{base}/crop" if row.crop else None,
            created=int(row.added),
        )


class SearchHit(Face):
    score: float = Field(description="cosine similarity in the space searched (FaceCLIP, or identity for same_person)")
    rank: int
    distance: float | None = Field(None, description="same_person: identity distance (under the threshold)")

    @classmethod
    def from_hit(cls, hit: Hit, gallery: str) -> SearchHit:
        face = Face.from_row(hit.face, gallery).model_dump()
        return cls(**face, score=hit.score, rank=hit.rank, distance=hit.distance)


class SearchSummary(BaseModel):
    kind: Literal["text", "face", "composed"]
    top_k: int
    match: str | None


class SearchResponse(BaseModel):
    object: Literal["list"] = "list"
    gallery: str
    query: SearchSummary
    data: list[SearchHit]


class AddedImage(BaseModel):
    source: str
    status: Literal["added", "skipped", "no_face", "error"]
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


class GalleryStats(BaseModel):
    """A gallery's overview. Names only: no response carries a server filesystem path."""

    object: Literal["gallery"] = "gallery"
    name: str
    model: str
    dim: int
    backend: str
    index: str
    faces: int
    vectors: int
    images: int
    identities: int
    identity_model: str | None = Field(description="model of its identity vectors (null: not migrated yet)")
    identity_vectors: int
    attributes: dict[str, int | str]
    disk_bytes: int


class GalleryDeleted(BaseModel):
    id: str
    object: Literal["gallery.deleted"] = "gallery.deleted"
    deleted: bool
    faces: int = Field(description="how many faces were erased with it")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    dim: int
    galleries: list[str]
