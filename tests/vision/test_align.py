"""Similarity alignment onto the ArcFace-frame templates (no assets needed)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facevlm.errors import FacevlmError
from facevlm.vision.align import ARCFACE_112, align_face, estimate_transform, template


def test_dlib5_template_shares_arcface_eye_centres():
    dlib5 = template(112, "dlib5")
    np.testing.assert_allclose(dlib5[2:4].mean(0), ARCFACE_112[0], atol=1e-6)  # image-left eye
    np.testing.assert_allclose(dlib5[0:2].mean(0), ARCFACE_112[1], atol=1e-6)
    assert ARCFACE_112[2, 1] < dlib5[4, 1] < ARCFACE_112[3, 1]  # nose base: below the tip, above the mouth
    np.testing.assert_allclose(template(224, "arcface5"), ARCFACE_112 * 2)


@pytest.mark.parametrize("fmt", ["arcface5", "dlib5"])
def test_alignment_undoes_a_known_similarity(fmt):
    size = 128
    canon = template(size, fmt)
    angle, scale, shift = np.deg2rad(25), 2.3, np.array([140.0, 90.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = canon @ rot.T + shift
    image = np.zeros((500, 500, 3), np.uint8)
    for x, y in points:
        cv2.circle(image, (int(round(x)), int(round(y))), 6, (255, 255, 255), -1)
    matrix = estimate_transform(points, size, fmt)
    np.testing.assert_allclose(points @ matrix[:, :2].T + matrix[:, 2], canon, atol=1e-3)
    crop = align_face(image, points, size, fmt)
    assert crop.shape == (size, size, 3)
    for x, y in canon:  # each dot lands on its template point
        assert crop[int(round(y)), int(round(x))].min() > 200


def test_bad_landmarks_raise():
    with pytest.raises(FacevlmError, match="expected 5 finite"):
        align_face(np.zeros((10, 10, 3), np.uint8), [[0, 0]] * 4)
    with pytest.raises(FacevlmError, match="landmark format"):
        template(112, "mediapipe")
    with pytest.raises(FacevlmError, match="degenerate"):
        estimate_transform([[5, 5]] * 5)
