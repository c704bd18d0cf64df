"""Identity embeddings: the face expert whose distance means identity (FaceNet's recipe: one embedding,
and verification, recognition and clustering as distances in it).

An identity model maps the faces of a photo to descriptors such that two faces of one person are closer
(Euclidean distance) than the model's `threshold`, and two people farther. Galleries keep these
descriptors beside their FaceCLIP vectors (facevlm.index.identity_space); FaceCLIP is trained on
captions, so it says who *looks* alike, this says who *is* alike.

`dlib-resnet-v1` (the default) is dlib's ResNet metric network (`dlib_face_recognition_resnet_model_v1.dat`,
asset dlib-face-models, CC0; 128-d). dlib aligns the face itself from its 5 landmarks
(`get_face_chip`, 150x150 with 0.25 padding: "the 5-point aligned face"), so the pipeline's dlib5 points are
used as found (`vision.pipeline.Face.landmarks`). A face without them (a pre-cropped face, or landmarks in
another format, e.g. CelebA's arcface5) gets them from dlib's 5-point predictor inside its box, the whole
image when it has none: the same predictor and box rule as `vision.detect`, so both paths align alike.

Descriptors are returned as the model gives them, not as unit vectors, because the model's published
threshold is a distance between those: dlib's 0.6 (99.38% on LFW, dlib's dnn_face_recognition_ex.cpp) is
measured on raw descriptors, whose norm is about 1.4. Indexes search their unit-length versions (cosine)
and decisions use the raw distance.

Plugging in another model (e.g. an ArcFace or AdaFace ONNX): write a class with the `IdentityModel`
attributes, taking `weights` (an asset name or a local path, through `facevlm.assets.resolve`) in its
constructor, and name it in a recipe (`identity.model`) or on the CLI (`--identity-model`) in one of three
ways: a key of `IDENTITY_MODELS` (`register_identity_model`), an entry point of the group
`facevlm.identity_models` in your package, or "package.module:ClassName". Galleries record that name and
its `dim` and refuse a model of another name (their vectors would be meaningless neighbours);
`facevlm index reembed GALLERY --identity-model NAME --replace` recomputes a gallery's vectors with it.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from facevlm.assets import local_path
from facevlm.errors import FacevlmError
from facevlm.image import to_array

DEFAULT_IDENTITY_MODEL = "dlib-resnet-v1"
ENTRY_POINT_GROUP = "facevlm.identity_models"
# name -> "module:attribute" of a class taking `weights: str | None`
IDENTITY_MODELS: dict[str, str] = {DEFAULT_IDENTITY_MODEL: "facevlm.vision.identity:DlibResNet"}
DLIB_ASSET = "dlib-face-models"
DLIB_THRESHOLD_SOURCE = (
    "dlib's published LFW figure: 99.38% accuracy with threshold 0.6 on dlib_face_recognition_resnet_model_v1 "
    "descriptors (dlib examples/dnn_face_recognition_ex.cpp; dlib blog, 2017-02-12)"
)


class Located(Protocol):
    """Where a face is in its image: what `vision.pipeline.Face` and `FacePlace` both carry."""

    box: Any  # (x0, y0, x1, y1) in pixels, or None: the image is the face
    landmarks: Any  # 5x2 points in `landmark_format`, or empty
    landmark_format: str


@dataclass(frozen=True)
class FacePlace:
    """A face known by its stored place (a gallery row, a record) rather than found by the pipeline."""

    box: tuple[float, float, float, float] | None = None
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    landmark_format: str = "dlib5"


class IdentityModel(Protocol):
    """A pluggable identity expert. `name` is what loads it (and what galleries record), `dim` the
    descriptor width, `threshold` the same-person distance with its `threshold_source` (a citation)."""

    name: str
    dim: int
    threshold: float
    threshold_source: str

    def embed(self, image: Any, faces: Sequence[Located]) -> np.ndarray:
        """float32 [len(faces), dim] descriptors of the faces of one RGB image (PIL or uint8 array)."""
        ...


class DlibResNet:
    """dlib's face recognition ResNet on the 5-point aligned face (see the module docstring)."""

    name = DEFAULT_IDENTITY_MODEL
    dim = 128
    threshold = 0.6
    threshold_source = DLIB_THRESHOLD_SOURCE

    def __init__(self, weights: str | None = None):
        import dlib

        root = local_path(weights or DLIB_ASSET)
        net, shape = root / "dlib_face_recognition_resnet_model_v1.dat", root / "shape_predictor_5_face_landmarks.dat"
        for file in (net, shape):
            if not file.is_file():
                raise FacevlmError(f"{file}: missing; run `facevlm assets fetch {DLIB_ASSET}`")
        self._dlib = dlib
        self.net = dlib.face_recognition_model_v1(str(net))
        self.predictor = dlib.shape_predictor(str(shape))
        self.lock = threading.Lock()  # one dlib net object is not safe to run from two threads at once

    def embed(self, image: Any, faces: Sequence[Located]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.dim), np.float32)
        rgb = np.ascontiguousarray(to_array(image))
        with self.lock:
            shapes = self._dlib.full_object_detections([self._shape(rgb, face) for face in faces])
            out = self.net.compute_face_descriptor(rgb, shapes)
        return np.asarray([np.asarray(v) for v in out], np.float32).reshape(len(faces), self.dim)

    def _shape(self, rgb: np.ndarray, face: Located) -> Any:
        """dlib's full_object_detection for one face: its own dlib5 landmarks, else predicted in its box."""
        from facevlm.vision.detect import landmarks_5

        h, w = rgb.shape[:2]
        box = (0.0, 0.0, float(w), float(h)) if face.box is None else tuple(float(v) for v in face.box)
        points = np.asarray(face.landmarks, np.float64).reshape(-1, 2)
        if len(points) != 5 or face.landmark_format != "dlib5" or not np.isfinite(points).all():
            points = landmarks_5(self.predictor, rgb, box)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        rect = self._dlib.rectangle(x0, y0, max(x1 - 1, x0), max(y1 - 1, y0))
        parts = self._dlib.points([self._dlib.point(int(round(x)), int(round(y))) for x, y in points])
        return self._dlib.full_object_detection(rect, parts)


def register_identity_model(name: str, target: str) -> None:
    """Make `name` load the class at `target` ("module:attribute") in this process."""
    if ":" not in target:
        raise FacevlmError(f"identity model {name}: target {target!r} is not 'module:attribute'")
    IDENTITY_MODELS[name] = target


def _target(name: str) -> str:
    if name in IDENTITY_MODELS:
        return IDENTITY_MODELS[name]
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.value
    if ":" in name:
        return name
    raise FacevlmError(
        f"identity model {name!r} is not one of {', '.join(IDENTITY_MODELS)} (nor an entry point of "
        f"{ENTRY_POINT_GROUP}, nor 'module:Class')",
        code="unknown_identity_model",
    )


@functools.lru_cache(maxsize=4)
def load_identity_model(name: str = DEFAULT_IDENTITY_MODEL, weights: str | None = None) -> IdentityModel:
    """The identity model `name` (see the module docstring for what a name may be), loaded once per
    process and weights. Its `name` is set to `name`, the string that loads it again."""
    module_name, _, attr = _target(name).partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise FacevlmError(f"identity model {name!r}: cannot import {module_name}:{attr} ({exc})") from None
    model = cls(weights)
    model.name = name
    for key in ("dim", "threshold", "threshold_source"):
        if not hasattr(model, key):
            raise FacevlmError(f"identity model {name!r}: {cls.__name__} has no `{key}`")
    return model
