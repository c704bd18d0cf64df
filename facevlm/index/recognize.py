"""Verification and recognition on identity descriptors (facevlm.vision.identity), for the CLI and the
gateway alike.

- Verification: two faces -> their distance, the decision (distance < threshold) and which threshold
  decided, with where it came from: the request, the operator's config, or the model's own published
  value (dlib: 0.6, its LFW figure).
- Recognition ("who is this?") inside ONE gallery: the nearest faces *labelled* in that gallery (an
  `identity` set at ingest or by naming a cluster) within the threshold; the nearest one's identity, else
  unknown. Names only ever come from the gallery's own labels: nothing names a person unless the
  identity is in the user's own gallery (docs/architecture.md, "Responsible defaults").

A face is an uploaded photo (it must show exactly one face: a group photo has no "the" face) or a
gallery face by id (its stored descriptor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facevlm.errors import FacevlmError
from facevlm.index.store import FaceRow, Gallery

SOURCES = ("request", "config", "model")


@dataclass(frozen=True)
class Threshold:
    """A same-person distance and its origin: `source` is request | config | model; `reference` cites
    the published figure when the model's own value is used."""

    value: float
    source: str
    reference: str = ""


def resolve_threshold(model: Any, configured: float | None = None, requested: float | None = None) -> Threshold:
    """The request's threshold, else the operator's, else the model's published one."""
    for value, source in ((requested, "request"), (configured, "config")):
        if value is not None:
            if isinstance(value, bool) or not math.isfinite(float(value)) or float(value) <= 0:
                raise FacevlmError(f"threshold: {value!r} is not a positive distance", code="invalid_request")
            return Threshold(float(value), source)
    return Threshold(float(model.threshold), "model", str(model.threshold_source))


@dataclass
class QueryFace:
    """An identity descriptor with where it came from: `box` of the detected face in an upload (None:
    the upload was used whole), or the gallery face `row`."""

    vector: np.ndarray
    box: list[float] | None = None
    row: FaceRow | None = None


def upload_face(model: Any, experts: Any, image: Any, where: str) -> QueryFace:
    """The descriptor of the one face of an uploaded photo (`experts`: facevlm.index.ingest.FaceExperts;
    None: the image is a face crop, used whole)."""
    from facevlm.vision.identity import FacePlace

    face = experts.single_face(image, where) if experts is not None else None
    if face is None:
        return QueryFace(model.embed(image, [FacePlace()])[0])
    return QueryFace(model.embed(face.image, [face])[0], None if face.box is None else list(face.box))


def gallery_face(gallery: Gallery, name: str, face_id: int, model: Any) -> QueryFace:
    """The stored descriptor of face `face_id` of `gallery` (named `name` in messages)."""
    space = identity_space(gallery, name)
    space.check(model, f"gallery {name!r}")
    vector = space.vector(int(face_id), name)
    return QueryFace(vector, row=gallery.faces([int(face_id)]).get(int(face_id)))


def identity_space(gallery: Gallery, name: str) -> Any:
    """The gallery's identity space, or 409 with the migration to run."""
    if gallery.identity is None:
        raise FacevlmError(
            f"gallery {name!r} has no identity vectors yet (made before identity search); run "
            f"`facevlm index reembed {name}` to add them",
            code="identity_missing",
            status_code=409,
        )
    return gallery.identity


@dataclass
class Verification:
    distance: float
    same: bool
    threshold: Threshold
    model: str


def verify(a: QueryFace, b: QueryFace, threshold: Threshold, model: str) -> Verification:
    distance = float(np.linalg.norm(np.asarray(a.vector, np.float32) - np.asarray(b.vector, np.float32)))
    return Verification(distance, distance < threshold.value, threshold, model)


@dataclass
class Match:
    face: FaceRow
    distance: float


@dataclass
class Identification:
    """`identity` None = unknown. `nearest_distance`: the nearest labelled face's distance, under the
    threshold or not (None: the gallery has no labelled face); `matches`: labelled faces under it."""

    identity: str | None
    nearest_distance: float | None
    threshold: Threshold
    model: str
    matches: list[Match] = field(default_factory=list)


def identify(
    gallery: Gallery, name: str, query: QueryFace, threshold: Threshold, model: str, top_k: int = 5
) -> Identification:
    """Who `query` is among the faces labelled in `gallery` (see the module docstring)."""
    if not 1 <= top_k <= 100:
        raise FacevlmError(f"top_k: {top_k} outside 1..100")
    space = identity_space(gallery, name)
    labelled = space.labelled_ids()
    if query.row is not None:
        labelled = labelled[labelled != query.row.id]  # a face does not identify itself
    found = space.nearest(query.vector, top_k, labelled) if len(labelled) else []
    rows = gallery.faces([n.face_id for n in found])
    matches = [Match(rows[n.face_id], n.distance) for n in found if n.distance < threshold.value and n.face_id in rows]
    nearest = found[0].distance if found else None
    return Identification(matches[0].face.identity if matches else None, nearest, threshold, model, matches)
