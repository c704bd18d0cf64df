"""Execute a search against a gallery: text->face, face->face, composed face+text (PDV), filters, top-k.

`Query` is the executor's own normalised form; `from_search_call` maps the structured call of
facevlm.data.search_call (the JSON a user, the gateway or the VLM emits) onto it, so every kind of query
is one JSON object away.

Composed queries follow PDV (Prompt Directional Vectors, training-free composed retrieval): the edit
defines a direction in text space, Δ = T("<base>, <edit>") - T("<base>"); it is added with scale α to
the reference face's image embedding and to the edited prompt's embedding, and the two are fused
with weight w. Face->face uses FaceCLIP image-image similarity for both `same_person` and `look_alike`:
FaceCLIP is trained on captions, not identities, so `same_person` is a look-alike ranking, not face
verification (see docs/api.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facevlm.errors import FacevlmError
from facevlm.index.names import validate_gallery_name
from facevlm.index.store import FaceRow, Gallery
from facevlm.schema import FACE_ID_PATTERN, SENSITIVE, VOCABULARY, canonical_value, drop_sensitive

MATCHES = ("same_person", "look_alike")


@dataclass
class PDVConfig:
    base_prompt: str = "a photo of a person"
    edit_template: str = "a photo of a person, {edit}"
    alpha: float = 1.0  # scale of the edit direction (the call's edit_weight overrides it)
    image_weight: float = 0.6  # w: share of the composed image embedding in the fused query


@dataclass
class Query:
    text: str | None = None
    face_id: int | None = None
    image: Any = None  # PIL RGB image of the query face (or a photo: the largest detected face is used)
    match: str = "look_alike"
    edit: str | None = None
    edit_weight: float | None = None
    filters: dict[str, list[str]] = field(default_factory=dict)
    min_prob: float = 0.0
    top_k: int = 10

    @property
    def kind(self) -> str:
        if self.text is not None:
            return "text"
        return "composed" if self.edit else "face"


@dataclass
class Hit:
    face: FaceRow
    score: float
    rank: int


class Searcher:
    """Runs `Query`s on one gallery with one embedder. `sensitive` enables filters on and display of
    sensitive apparent attributes (schema.SENSITIVE); off by default."""

    def __init__(
        self,
        gallery: Gallery,
        embedder: Any,
        *,
        pdv: PDVConfig | None = None,
        sensitive: bool = False,
        experts: Any = None,
    ):
        self.gallery, self.embedder = gallery, embedder
        self.pdv = pdv or PDVConfig()
        self.sensitive = sensitive
        self.experts = experts  # FaceExperts: finds the face in an uploaded query photo; None = use it whole

    def query_vector(self, q: Query) -> np.ndarray:
        if q.text is not None:
            if not q.text.strip():
                raise FacevlmError("query.text: empty text")
            return self.embedder.texts([q.text])[0]
        ref = self._face_vector(q)
        if not q.edit:
            return ref
        return self.composed(ref, q.edit, q.edit_weight)

    def composed(self, ref: np.ndarray, edit: str, weight: float | None = None) -> np.ndarray:
        """PDV: move the reference face along the edit's text direction; fuse with the edited prompt."""
        alpha = self.pdv.alpha if weight is None else float(weight)
        base, edited = self.embedder.texts([self.pdv.base_prompt, self.pdv.edit_template.format(edit=edit.strip())])
        direction = edited - base
        v_img = _unit(ref + alpha * direction)
        v_txt = _unit(edited + alpha * direction)
        return _unit(self.pdv.image_weight * v_img + (1 - self.pdv.image_weight) * v_txt)

    def _face_vector(self, q: Query) -> np.ndarray:
        if q.match not in MATCHES:
            raise FacevlmError(f"query.match: {q.match!r} is not one of {', '.join(MATCHES)}")
        if q.face_id is not None:
            found = self.gallery.embeddings([q.face_id])
            if q.face_id not in found:
                raise FacevlmError(
                    f"query.face.face_id: no face {q.face_id} in gallery {self.gallery.root.name}",
                    code="not_found",
                    status_code=404,
                )
            return found[q.face_id]
        if q.image is None:
            raise FacevlmError("query: give text, a face_id or an image")
        crop = q.image
        if self.experts is not None:
            from facevlm.index.ingest import crop_margin

            crop = self.experts.query_crop(q.image, crop_margin(self.experts.cfg, self.embedder))
            if crop is None:
                raise FacevlmError("query.face.image: no face found in the query image", code="no_face")
        return self.embedder.images([crop])[0]

    def allowed_ids(self, q: Query) -> np.ndarray | None:
        if not q.filters:
            return None
        clean: dict[str, list[str]] = {}
        for name, values in q.filters.items():
            if name in SENSITIVE and not self.sensitive:
                raise FacevlmError(f"filters.{name}: sensitive attribute filters are switched off on this server")
            if name != "identity" and name not in VOCABULARY:
                raise FacevlmError(f"filters.{name}: not an attribute of facevlm.schema.VOCABULARY")
            try:
                clean[name] = [v if name == "identity" else canonical_value(name, v) for v in values]
            except ValueError as exc:
                raise FacevlmError(f"filters.{name}: {exc}") from None
        return self.gallery.filter_ids(clean, q.min_prob)

    def run(self, q: Query) -> list[Hit]:
        if not 1 <= q.top_k <= 1000:
            raise FacevlmError(f"top_k: {q.top_k} outside 1..1000")
        vec = self.query_vector(q)
        allowed = self.allowed_ids(q)
        exclude = {q.face_id} if q.face_id is not None else set()
        found = self.gallery.search(vec[None], q.top_k + len(exclude), allowed)[0]
        found = [(i, s) for i, s in found if i not in exclude][: q.top_k]
        rows = self.gallery.faces([i for i, _ in found])
        hits = []
        for face_id, score in found:
            row = rows.get(face_id)
            if row is None:  # vector of a face erased meanwhile: metadata is the truth
                continue
            row.attributes = drop_sensitive(row.attributes, self.sensitive)
            hits.append(Hit(row, score, len(hits) + 1))
        return hits


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def from_search_call(
    call: Any, images: dict[str, Any] | None = None, limits: Any = None, allow_sensitive: bool = False
) -> tuple[str, Query]:
    """(gallery name, Query) from a facevlm.data.search_call.SearchCall, an OpenAI tool call, or the
    bare arguments (dict or JSON). `images` maps chat/multipart references ("image_1", ...) to decoded
    PIL images; data: URIs inside the call go through the safe decoder with `limits`."""
    from facevlm.data.search_call import SearchCall
    from facevlm.image import ImageLimits, decode_image, parse_data_uri

    call = call if isinstance(call, SearchCall) else SearchCall.parse(call, allow_sensitive=allow_sensitive)
    if not allow_sensitive and set(call.filter_values()) & SENSITIVE:  # a ready-made call skipped parse()
        raise FacevlmError("search call: filtering on sensitive attributes is disabled")
    args = call.arguments
    gallery = validate_gallery_name(args.gallery)  # a name, never a path (facevlm.index.names)
    q = Query(filters=call.filter_values(), min_prob=args.filters.min_prob or 0.0, top_k=args.top_k)
    if hasattr(args.query, "text"):
        q.text = args.query.text
        return gallery, q
    ref = args.query.face
    if ref.face_id is not None:
        if not re.fullmatch(FACE_ID_PATTERN, ref.face_id):
            raise FacevlmError(f"query.face.face_id: {ref.face_id!r} is not a face id of this gallery (1-18 digits)")
        q.face_id = int(ref.face_id)
    elif ref.image.startswith("data:"):
        q.image = decode_image(
            parse_data_uri(ref.image, "query.face.image"), limits or ImageLimits(), "query.face.image"
        ).image
    elif ref.image in (images or {}):
        q.image = images[ref.image]
    else:
        raise FacevlmError(f"query.face.image: {ref.image!r} was not uploaded with the request", code="missing_image")
    q.match = args.query.match
    q.edit = getattr(args.query, "edit", None)
    q.edit_weight = getattr(args.query, "edit_weight", None)
    return gallery, q
