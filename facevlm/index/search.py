"""Execute a search against a gallery: text->face, face->face, composed face+text (PDV), filters, top-k.

`Query` is the executor's own normalised form; `from_search_call` maps the structured call of
facevlm.data.search_call (the JSON a user, the gateway or the VLM emits) onto it, so every kind of query
is one JSON object away.

Composed queries follow PDV (Prompt Directional Vectors, training-free composed retrieval): the edit
defines a direction in text space, Δ = T("<base>, <edit>") - T("<base>"); it is added with scale α to
the reference face's image embedding and to the edited prompt's embedding, and the two are fused
with weight w.

Face->face has two meanings. `look_alike` ranks by FaceCLIP image-image similarity (who looks alike).
`same_person` searches the gallery's identity space (facevlm.index.identity_space: the identity expert's
descriptors): the faces within the identity threshold of the query face, nearest first, so it answers
"more photos of this person" and nothing else; a composed `same_person` query ranks those faces by the
edited FaceCLIP query ("this person, smiling"). A gallery without identity vectors refuses
`same_person` (409) until `facevlm index reembed` has migrated it.
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
    score: float  # cosine similarity in the space searched
    rank: int
    distance: float | None = None  # same_person: raw identity distance (below the threshold)


class Searcher:
    """Runs `Query`s on one gallery with one embedder. `sensitive` enables filters on and display of
    sensitive apparent attributes (schema.SENSITIVE); off by default. `identity` is the identity model
    (default: the one the gallery records) and `threshold` its same-person distance (default: the
    model's own) for `same_person` queries."""

    def __init__(
        self,
        gallery: Gallery,
        embedder: Any,
        *,
        pdv: PDVConfig | None = None,
        sensitive: bool = False,
        experts: Any = None,
        identity: Any = None,
        threshold: float | None = None,
    ):
        self.gallery, self.embedder = gallery, embedder
        self.pdv = pdv or PDVConfig()
        self.sensitive = sensitive
        self.experts = experts  # FaceExperts: finds the face in an uploaded query photo; None = use it whole
        self._identity, self._threshold = identity, threshold

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

    def _query_face(self, q: Query) -> Any:
        """The face of an uploaded query photo (the largest one found), or None: use the image whole."""
        if q.image is None:
            raise FacevlmError("query: give text, a face_id or an image")
        if self.experts is None:
            return None
        face = self.experts.query_face(q.image)
        if face is None:
            raise FacevlmError("query.face.image: no face found in the query image", code="no_face")
        return face

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
        face = self._query_face(q)
        crop = q.image
        if face is not None:
            from facevlm.index.ingest import crop_margin
            from facevlm.vision.crop import face_crop

            crop = face_crop(face.image, face.box, crop_margin(self.experts.cfg, self.embedder))
        return self.embedder.images([crop])[0]

    # -- the identity space (same_person) -----------------------------------------------------------------
    def identity_model(self) -> Any:
        """The identity model of this gallery's vectors (409 if the gallery has none, or another one)."""
        from facevlm.index.recognize import identity_space

        space = identity_space(self.gallery, self.gallery.root.name)
        if self._identity is None:
            from facevlm.vision.identity import load_identity_model

            self._identity = load_identity_model(space.spec.model)
        space.check(self._identity, f"gallery {self.gallery.root.name!r}")
        return self._identity

    @property
    def threshold(self) -> float:
        return float(self._threshold if self._threshold is not None else self.identity_model().threshold)

    def identity_vector(self, q: Query) -> np.ndarray:
        """The identity descriptor of the query face: a gallery face's stored one, or the upload's."""
        model = self.identity_model()
        if q.face_id is not None:
            return self.gallery.identity.vector(q.face_id, self.gallery.root.name)
        face = self._query_face(q)
        if face is None:
            from facevlm.vision.identity import FacePlace

            return model.embed(q.image, [FacePlace()])[0]
        return model.embed(face.image, [face])[0]

    def same_person(self, q: Query, allowed: np.ndarray | None, k: int) -> list[tuple[int, float, float]]:
        """(face id, cosine, distance) of the k nearest faces within the threshold, the query face excluded."""
        vec = self.identity_vector(q)
        threshold = self.threshold
        found = self.gallery.identity.nearest(vec, k + (q.face_id is not None), allowed)
        kept = [n for n in found if n.face_id != q.face_id and n.distance < threshold]
        return [(n.face_id, n.similarity, n.distance) for n in kept[:k]]

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
        if q.kind != "text" and q.match not in MATCHES:
            raise FacevlmError(f"query.match: {q.match!r} is not one of {', '.join(MATCHES)}")
        allowed = self.allowed_ids(q)
        distances: dict[int, float] = {}
        if q.kind == "face" and q.match == "same_person":
            matches = self.same_person(q, allowed, q.top_k)
            found = [(i, cos) for i, cos, _ in matches]
            distances = {i: d for i, _, d in matches}
        else:
            if q.kind == "composed" and q.match == "same_person":  # this person, ranked by the edit
                matches = self.same_person(q, allowed, 1000)
                distances = {i: d for i, _, d in matches}
                allowed = np.fromiter(distances, np.int64)
            vec = self.query_vector(q)
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
            hits.append(Hit(row, score, len(hits) + 1, distances.get(face_id)))
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
