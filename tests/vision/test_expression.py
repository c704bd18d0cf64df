"""ExpressionModel on real face crops, in facevlm's vocabulary order."""

from __future__ import annotations

import numpy as np
from PIL import Image

from facevlm.schema import EXPRESSIONS
from facevlm.vision.detect import DetectorConfig, FaceDetector
from facevlm.vision.expression import ExpressionModel, expression_crop
from facevlm.vision.fer import FER_LABELS


def test_vocabulary_order_and_batching(assets_home):
    model = ExpressionModel(batch_size=3)
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (50 + i, 40, 3), dtype=np.uint8) for i in range(7)]
    probs, raw = model.predict(crops), model.predict_fer_order(crops)
    assert probs.shape == (7, 7) and np.allclose(probs.sum(1), 1, atol=1e-5)
    for j, name in enumerate(EXPRESSIONS):
        fer_name = {"anger": "angry"}.get(name, name)
        np.testing.assert_array_equal(probs[:, j], raw[:, FER_LABELS.index(fer_name)])
    np.testing.assert_allclose(ExpressionModel(batch_size=64).predict(crops), probs, atol=1e-6)
    assert model.predict([]).shape == (0, 7)


def test_smiling_faces_read_as_happy(sample_path):
    detector = FaceDetector(DetectorConfig(backend="hog", min_confidence=0.0, landmarks=False))
    model = ExpressionModel()
    for name in ("obama.jpg", "0-f15-hao-ph.jpg"):
        image = Image.open(sample_path(name))
        face = detector.detect(image)[0]
        ((expression, prob),) = model.top(model.predict([expression_crop(image, face.box)]))
        assert expression == "happy" and prob > 0.9, (name, expression, prob)


def test_crop_is_square_and_padded_at_the_border():
    image = np.arange(100 * 80 * 3, dtype=np.uint8).reshape(100, 80, 3)
    crop = expression_crop(image, (50, 60, 90, 110), margin=0.1)  # runs off the right and bottom edges
    assert crop.shape == (60, 60, 3)
