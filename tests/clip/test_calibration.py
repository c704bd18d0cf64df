"""Zero-shot calibration: fitting on constructed scores, the reliability rule, and calibration.json
travelling with a FaceCLIP folder into its zero-shot head."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from facevlm.clip.calibration import (
    CALIBRATION_FILE,
    UNCERTAIN,
    AttributeCalibration,
    Calibration,
    best_threshold,
    file_sha256,
    fit_attribute,
    grouped_folds,
    prompts_sha,
)
from facevlm.errors import FacevlmError

BINARY = ["true", "false"]


def test_best_threshold_sits_between_the_classes() -> None:
    scores = np.array([-1.0, -0.5, 0.2, 0.3, 0.6, 0.9])
    positive = np.array([False, False, False, True, True, True])
    assert best_threshold(scores, positive) == pytest.approx(0.25)
    # all positive: any threshold below every score; the one closest to 0 is chosen
    assert best_threshold(np.array([0.5, 0.7]), np.array([True, True])) == pytest.approx(-0.5)
    # one outlier costs less than moving the threshold past three faces
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.5, 0.6, 0.7])
    positive = np.array([False, False, False, True, True, True, False])
    assert best_threshold(scores, positive) == pytest.approx(0.325)


def test_grouped_folds_keep_identities_together() -> None:
    groups = np.repeat([f"id{i}" for i in range(10)], [5, 1, 1, 2, 2, 3, 3, 1, 1, 1])
    fold = grouped_folds(groups, 4, seed=0)
    for g in np.unique(groups):
        assert len(set(fold[groups == g])) == 1
    assert sorted(np.bincount(fold).tolist()) == [5, 5, 5, 5]  # balanced by faces


def _constructed(n_ids: int = 30, per_id: int = 2, offset: float = 0.3, seed: int = 0):
    """Smiling-like scores: positives around offset + 0.15, negatives around offset - 0.15 (the
    uncalibrated threshold 0 calls every face "true"), two faces per identity."""
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n_ids * per_id // 2)  # 0 = "true"
    scores = offset + np.where(y == 0, 0.15, -0.15) + rng.normal(0, 0.03, len(y))
    groups = np.repeat([f"p{i}" for i in range(n_ids)], per_id)
    return scores, y, groups


def test_fit_finds_the_shifted_threshold_and_is_reliable() -> None:
    scores, y, groups = _constructed()
    cal = fit_attribute("Smiling", scores, y, groups, BINARY, folds=5)
    assert 0.2 < cal.threshold < 0.4  # the classes' midpoint, not 0
    assert cal.reliable and cal.cv_accuracy > 0.95 and cal.majority_accuracy == pytest.approx(0.5)
    labels, probs = cal.decide(scores)
    assert np.mean(np.asarray(labels) == np.where(y == 0, "true", "false")) > 0.95
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert probs[y == 0, 0].mean() > 0.8 > probs[y == 1, 0].mean()  # calibrated, not hard 0/1 at scale 100


def test_attribute_not_beating_majority_is_uncertain() -> None:
    rng = np.random.default_rng(1)
    y = np.where(rng.random(80) < 0.9, 1, 0)  # 90% "false" (Eyeglasses-like base rate)
    scores = rng.normal(0, 1, 80)  # no information
    groups = np.asarray([f"p{i // 2}" for i in range(80)])
    cal = fit_attribute("Eyeglasses", scores, y, groups, BINARY, folds=5)
    assert not cal.reliable and cal.cv_accuracy <= cal.majority_accuracy + 0.05
    assert cal.majority == "false"
    labels, probs = cal.decide(scores)
    assert labels == [UNCERTAIN] * 80 and probs.shape == (80, 2)


def test_categorical_keeps_argmax_and_fits_a_temperature() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 90)
    scores = rng.normal(0, 0.02, (90, 3))
    scores[np.arange(90), y] += 0.05  # informative, small cosine differences
    groups = np.asarray([f"p{i // 3}" for i in range(90)])
    cal = fit_attribute("expression", scores, y, groups, ["neutral", "happy", "sad"], folds=5)
    assert cal.kind == "categorical" and cal.reliable and cal.scale > 10
    labels, _ = cal.decide(scores)
    assert labels == [["neutral", "happy", "sad"][i] for i in scores.argmax(axis=1)]


def test_too_few_labelled_faces_is_never_reliable() -> None:
    cal = fit_attribute(
        "Wearing_Hat", np.array([0.1, 0.2, 0.3]), np.array([0, 1, -1]), np.array(["a", "b", "c"]), BINARY
    )
    assert not cal.reliable and cal.n == 2


def test_bad_calibration_values_are_refused() -> None:
    with pytest.raises(FacevlmError, match="kind"):
        AttributeCalibration("Smiling", "ordinal", BINARY)
    with pytest.raises(FacevlmError, match="scale"):
        AttributeCalibration("Smiling", "binary", BINARY, scale=0.0)


@pytest.fixture
def tiny_folder(tmp_path):
    from fakes import save_tiny_clip

    return tmp_path / "tiny", save_tiny_clip(tmp_path / "tiny")


def _same(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _calibration(folder, reliable: bool) -> Calibration:
    smiling = AttributeCalibration(
        "Smiling", "binary", BINARY, threshold=-5.0, scale=3.0, reliable=reliable, prompts_sha=prompts_sha("Smiling")
    )
    return Calibration(
        {"Smiling": smiling},
        fitted_on="test[train]",
        weights_sha256=file_sha256(folder / "open_clip_model.safetensors"),
    )


def test_calibration_round_trips_with_the_model(tiny_folder, tmp_path) -> None:
    from facevlm.clip import load

    folder, ref = tiny_folder
    cal = _calibration(folder, reliable=True)
    cal.save(folder)
    clip = load(ref, backend="eager")
    assert _same(clip.calibration.to_json(), cal.to_json())  # (NaN fields: compare as JSON text)
    head = clip.zero_shot_head("Smiling")
    assert head.calibration is clip.calibration.attributes["Smiling"]
    images = torch.nn.functional.normalize(torch.randn(4, clip.embed_dim), dim=-1)
    labels, probs = head.predict(images)
    assert labels == ["true"] * 4  # threshold -5: every margin (a difference of cosines) is above it
    assert probs.shape == (4, 2)
    assert clip.zero_shot_head("Eyeglasses").calibration is None  # not calibrated: raw rule as before
    # saving the model writes its calibration beside it
    copy = clip.save(tmp_path / "copy")
    assert _same(json.loads((copy / CALIBRATION_FILE).read_text()), cal.to_json())


def test_unreliable_attribute_is_uncertain_in_the_head(tiny_folder) -> None:
    from facevlm.clip import load

    folder, ref = tiny_folder
    _calibration(folder, reliable=False).save(folder)
    clip = load(ref, backend="eager")
    labels, _ = clip.zero_shot_head("Smiling").predict(torch.nn.functional.normalize(torch.randn(3, clip.embed_dim)))
    assert labels == [UNCERTAIN] * 3


def test_calibration_of_other_weights_asserts_nothing(tiny_folder) -> None:
    from facevlm.clip import load

    folder, ref = tiny_folder
    cal = _calibration(folder, reliable=True)
    cal.weights_sha256 = "0" * 64  # fitted before the model was retrained in place
    cal.save(folder)
    clip = load(ref, backend="eager")
    assert "stale" in clip.calibration.fitted_on and not clip.calibration.attributes["Smiling"].reliable


def test_other_prompts_get_no_calibration(tiny_folder) -> None:
    from facevlm.clip import load

    folder, ref = tiny_folder
    cal = _calibration(folder, reliable=True)
    cal.attributes["Smiling"].prompts_sha = "fitted-for-other-prompts"
    cal.save(folder)
    assert load(ref, backend="eager").zero_shot_head("Smiling").calibration is None
