"""Similarity-transform face alignment to a canonical 5-point template.

Two landmark formats exist in facevlm records:
- "arcface5": [left eye centre, right eye centre, nose tip, left mouth corner, right mouth corner] (image
  left/right), as in CelebA's landmark files and the ArcFace 112x112 template;
- "dlib5": what dlib's 5-point predictor gives (see `detect.py`): two corners of each eye + nose base.

Both are aligned into the same ArcFace 112x112 frame (scaled to the requested size) so crops from either
source line up: the dlib5 template is dlib's own mean shape (`get_face_chip_details`) moved by the one
similarity transform that puts its eye centres exactly on ArcFace's eye centres.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from facevlm.errors import FacevlmError
from facevlm.image import to_array

LandmarkFormat = Literal["arcface5", "dlib5"]

# insightface's arcface_dst for 112x112 crops.
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)

# dlib/image_transforms/interpolation.h, get_face_chip_details: the 5-point mean face on the unit square.
_DLIB5_UNIT = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ],
    dtype=np.float64,
)


def _similarity_from_two(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The exact 2x3 similarity mapping two source points onto two destination points."""
    s, d = complex(*(src[1] - src[0])), complex(*(dst[1] - dst[0]))
    a = d / s  # rotation + scale as one complex number
    t = complex(*dst[0]) - a * complex(*src[0])
    return np.array([[a.real, -a.imag, t.real], [a.imag, a.real, t.imag]])


def _dlib5_template() -> np.ndarray:
    eyes_src = np.stack([_DLIB5_UNIT[2:4].mean(0), _DLIB5_UNIT[0:2].mean(0)])  # image-left eye, image-right eye
    m = _similarity_from_two(eyes_src, ARCFACE_112[:2])
    return _DLIB5_UNIT @ m[:, :2].T + m[:, 2]


TEMPLATES_112: dict[str, np.ndarray] = {"arcface5": ARCFACE_112, "dlib5": _dlib5_template()}


def template(size: int = 112, landmark_format: LandmarkFormat = "dlib5") -> np.ndarray:
    """The 5x2 template for a `size` x `size` crop (the 112 template scaled uniformly)."""
    if landmark_format not in TEMPLATES_112:
        raise FacevlmError(f"landmark format {landmark_format!r} is not one of {', '.join(TEMPLATES_112)}")
    return TEMPLATES_112[landmark_format] * (size / 112.0)


def estimate_transform(landmarks: Any, size: int = 112, landmark_format: LandmarkFormat = "dlib5") -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) from `landmarks` to the template."""
    import cv2

    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise FacevlmError(f"landmarks: expected 5 finite (x, y) points, got shape {points.shape}")
    matrix, _ = cv2.estimateAffinePartial2D(points, template(size, landmark_format), method=cv2.LMEDS)
    if matrix is None:
        raise FacevlmError("landmarks: degenerate points, no similarity transform fits them")
    return matrix


def align_face(image: Any, landmarks: Any, size: int = 112, landmark_format: LandmarkFormat = "dlib5") -> np.ndarray:
    """The aligned `size` x `size` RGB uint8 face crop (border pixels replicated, not black, so the crop
    of a face near the photo edge does not get a hard black edge a model could key on)."""
    import cv2

    if size < 8:
        raise FacevlmError(f"size: aligned crops must be at least 8 pixels, got {size}")
    matrix = estimate_transform(landmarks, size, landmark_format)
    return cv2.warpAffine(
        to_array(image), matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
