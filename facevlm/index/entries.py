"""What goes into a gallery and what comes back out: plain records, free of storage details."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facevlm.schema import AttributeValue


@dataclass
class ImageBlob:
    """The original image a face comes from (stored once, shared by its faces)."""

    sha256: str
    data: bytes | None  # None: do not keep the original (e.g. faces imported from a dataset)
    ext: str = "jpg"
    source: str = ""
    width: int = 0
    height: int = 0


@dataclass
class FaceEntry:
    """One face to add; `embedding` is the L2-normalised FaceCLIP vector of its training crop
    (`facevlm.vision.crop`), `identity_vector` its identity descriptor (facevlm.vision.identity; None in a
    gallery without an identity space)."""

    embedding: np.ndarray
    crop: Any = None  # PIL image stored as crop + thumbnail; None stores no pixels
    box: list[float] | None = None
    landmarks: list[list[float]] = field(default_factory=list)
    det_score: float = 1.0
    identity: str | None = None
    attributes: list[AttributeValue] = field(default_factory=list)
    source: str = ""
    licence: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    identity_vector: np.ndarray | None = None


@dataclass
class FaceRow:
    id: int
    image_id: int | None
    image_sha256: str | None
    image_source: str | None
    box: list[float] | None
    landmarks: list[list[float]]
    det_score: float
    identity: str | None
    source: str
    licence: str
    meta: dict[str, Any]
    crop: str | None
    thumb: str | None
    added: float
    attributes: list[AttributeValue]
