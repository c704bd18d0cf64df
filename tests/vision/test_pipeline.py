"""The face pipeline (detect -> crop -> align -> expression) and the one crop rule it applies."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from PIL import Image

from facevlm.errors import FacevlmError
from facevlm.schema import EXPRESSIONS
from facevlm.vision.crop import TRAINING_MARGIN, face_crop
from facevlm.vision.detect import DetectorConfig
from facevlm.vision.expression import ExpressionModel, expression_crop
from facevlm.vision.pipeline import Expression, FacePipeline, PipelineConfig, stored


def _photo() -> Image.Image:
    """A 100x80 photo, grey, with a red 40x40 'face' at (30, 20)."""
    img = Image.new("RGB", (100, 80), (90, 90, 90))
    img.paste(Image.new("RGB", (40, 40), (200, 30, 30)), (30, 20))
    return img


def test_crop_rule_grows_the_box_and_pads_black_at_the_border():
    photo = _photo()
    inner = face_crop(photo, (30, 20, 70, 60), margin=0.25)
    assert inner.size == (60, 60) and inner.getpixel((30, 30)) == (200, 30, 30)
    assert inner.getpixel((0, 0)) == (90, 90, 90)
    edge = face_crop(photo, (70, 50, 100, 80), margin=0.5)  # the grown box runs 15 px past right and bottom
    assert edge.size == (60, 60)  # padded, not clipped: the face stays centred and keeps its aspect ratio
    assert edge.getpixel((59, 59)) == (0, 0, 0) and edge.getpixel((44, 44)) == (90, 90, 90)
    assert face_crop(photo, None) is photo  # already a face crop
    square = face_crop(photo, (30, 20, 50, 60), margin=0.0, size=32)  # 20x40: squared first, never stretched
    assert square.size == (32, 32) and square.getpixel((16, 16)) == (200, 30, 30)
    assert face_crop(photo, None, size=50).size == (50, 50)
    with pytest.raises(FacevlmError, match="margin"):
        face_crop(photo, (0, 0, 10, 10), margin=-0.1)


def test_stored_values_survive_a_float32_round_trip():
    for value in (0.0, 12.345678, 1919.999, 371.97000122):
        once = stored(value)
        assert once == float(np.float32(once)) == stored(once)  # what a record stores is what was cut
        assert abs(once - value) <= 0.005 + 1e-4


def test_expression_attribute_and_distribution():
    probs = np.array([0.05, 0.05, 0.05, 0.7, 0.05, 0.05, 0.05], np.float32)
    expr = Expression(probs, "m")
    assert (expr.value, expr.model) == (EXPRESSIONS[3], "m") and expr.prob == pytest.approx(0.7)
    label = expr.attribute()
    assert (label.name, label.value, label.origin, label.model) == ("expression", EXPRESSIONS[3], "pseudo", "m")
    assert list(expr.distribution()) == list(EXPRESSIONS) and sum(expr.distribution().values()) == pytest.approx(1)
    assert Expression(np.array([1.0000001, 0, 0, 0, 0, 0, 0], np.float32)).prob == 1.0


def test_smiling_is_read_from_p_happy():
    happy = EXPRESSIONS.index("happy")
    for p_happy, value, prob in ((0.7, "true", 0.7), (0.2, "false", 0.8), (0.5, "false", 0.5)):
        probs = np.full(len(EXPRESSIONS), (1 - p_happy) / (len(EXPRESSIONS) - 1), np.float32)
        probs[happy] = p_happy
        expr = Expression(probs, "m")
        smile = expr.smiling()
        assert (smile.name, smile.value, smile.origin, smile.model) == ("Smiling", value, "pseudo", "m")
        assert smile.prob == pytest.approx(prob)
        assert [a.name for a in expr.attributes()] == ["expression", "Smiling"]


def test_config_is_validated():
    for bad in (dict(crop_margin=-1), dict(expression_margin=-0.5), dict(aligned_size=4), dict(batch_size=0)):
        with pytest.raises(FacevlmError, match="pipeline"):
            PipelineConfig(**bad)


def test_known_face_gets_the_training_crop_and_no_detector_is_loaded():
    pipeline = FacePipeline(PipelineConfig(expression=False))
    face = pipeline.face(_photo(), [30, 20, 70, 60], n_faces=3)
    assert np.array_equal(np.asarray(face.crop), np.asarray(face_crop(_photo(), (30, 20, 70, 60), TRAINING_MARGIN)))
    assert face.aligned is None and face.landmarks.shape == (0, 2) and face.n_faces == 3
    assert pipeline.label([face])[0].expression is None  # the expert is switched off
    assert pipeline._detector is None and pipeline._expression is None  # nothing was loaded


def test_photo_faces_crops_alignment_and_expressions(sample_path):
    pipeline = FacePipeline(PipelineConfig(detector=DetectorConfig(min_confidence=0.9)))
    photo = Image.open(sample_path("obama_partial_face.jpg"))
    (face,) = pipeline.run(photo)
    assert face.box[0] == 0.0 and all(stored(v) == v for v in face.box)  # the face touches the left border
    assert face.landmarks.shape == (5, 2) and face.aligned.shape == (112, 112, 3)
    assert np.array_equal(np.asarray(face.crop), np.asarray(face_crop(face.image, face.box)))
    x0, y0, x1, y1 = face.box
    assert face.crop.size == (
        round(x1 + 0.2 * (x1 - x0)) - round(x0 - 0.2 * (x1 - x0)),
        round(y1 + 0.2 * (y1 - y0)) - round(y0 - 0.2 * (y1 - y0)),
    )
    # the expert saw fer's square crop of the box, not the aligned crop
    model = ExpressionModel()
    np.testing.assert_allclose(
        face.expression.probs, model.predict([expression_crop(face.image, face.box)])[0], atol=1e-6
    )
    assert face.expression.value == "happy" and face.expression.model == "fer-mini-xception"


def test_landmarks_in_a_known_box_are_a_detected_faces(sample_path):
    # a hand-drawn box that equals the detector's gets the very landmarks detection gave it, stored alike
    pipeline = FacePipeline(PipelineConfig(detector=DetectorConfig(min_confidence=0.9), expression=False))
    (face,) = pipeline.run(sample_path("grace_hopper.jpg"))
    (points,) = pipeline.landmarks_in(sample_path("grace_hopper.jpg"), [face.box])
    assert points == face.landmarks.tolist() and all(stored(v) == v for p in points for v in p)
    shifted = pipeline.landmarks_in(sample_path("grace_hopper.jpg"), [face.box, [v + 20 for v in face.box]])
    assert shifted[0] == points and shifted[1] != points  # one predictor pass per box, in box order


def test_batches_count_drops_and_match_single_runs(sample_path):
    pipeline = FacePipeline(PipelineConfig(detector=DetectorConfig(min_confidence=0.9, min_size=150)))
    names = ("multi_face.jpg", "grace_hopper.jpg")
    dropped: Counter = Counter()
    group, hopper = pipeline.run_batch([sample_path(n) for n in names], dropped)
    assert group == [] and len(hopper) == 1  # the group photo's faces are ~100 px
    assert dropped["too_small"] >= 4
    single = pipeline.run(sample_path("grace_hopper.jpg"))[0]
    assert single.box == hopper[0].box and single.n_faces == hopper[0].n_faces == 1
    np.testing.assert_allclose(single.expression.probs, hopper[0].expression.probs, atol=1e-6)
