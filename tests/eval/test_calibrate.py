"""The real-photo pieces of the harness: the majority baseline, labels taken from record meta, and
`facevlm eval calibrate` end to end on a tiny FaceCLIP (fit on train, scored calibrated by the suite)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from facevlm.errors import FacevlmError
from facevlm.eval.models import ModelSpec, build_model


def test_majority_guesses_the_training_split_majority(stored_faces):
    from facevlm.data.store import iter_records, load_records
    from facevlm.eval.datasets import DatasetSpec, load_dataset
    from facevlm.eval.suite import TaskSpec
    from facevlm.eval.tasks import Context
    from facevlm.eval.tasks.zeroshot import run

    model = build_model(
        ModelSpec(name="maj", kind="majority", options={"dataset": str(stored_faces), "split": "train"})
    )
    train = [r for r in iter_records(load_records(stored_faces, "train"))]
    smiling = [r.get("Smiling") for r in train]
    assert model.majority["Smiling"] == max(set(smiling), key=smiling.count)
    test = load_dataset(DatasetSpec(name="faces", source="store", ref=str(stored_faces), split="test"))
    res = run(model, test, TaskSpec(task="zeroshot", attributes=["expression", "Smiling"]), Context(n_boot=0))[0]
    truth = test.labels("Smiling")
    assert res.metrics["acc/Smiling"] == pytest.approx(np.mean(truth == model.majority["Smiling"]))
    assert res.metrics["rate/Smiling"] == pytest.approx(np.mean(truth == "true"))
    assert res.metrics["expression/acc1"] == pytest.approx(
        np.mean(test.labels("expression") == model.majority["expression"])
    )


def test_meta_labels_replace_an_attribute(stored_faces):
    from facevlm.data.store import iter_records, load_records
    from facevlm.eval.datasets import from_records, meta_label

    assert meta_label({"hand_labels": {"facial_hair": True}}, "!hand_labels.facial_hair") == "false"
    assert meta_label({"hand_labels": {"facial_hair": False}}, "!hand_labels.facial_hair") == "true"
    assert meta_label({"hand_labels": {}}, "hand_labels.facial_hair") == ""
    records = list(iter_records(load_records(stored_faces)))[:4]
    for i, rec in enumerate(records):
        rec.meta["hand_labels"] = {"facial_hair": i % 2 == 0}
    data = from_records(records, "faces", "all", meta_labels={"No_Beard": "!hand_labels.facial_hair"})
    assert data.labels("No_Beard").tolist() == ["false", "true", "false", "true"]
    assert data.fingerprint != from_records(records, "faces", "all").fingerprint


def test_expression_crop_is_the_pipelines(stored_faces):
    from facevlm.data.store import face_crop, iter_records, load_records
    from facevlm.eval.datasets import DatasetSpec, from_records
    from facevlm.image import open_image
    from facevlm.vision.expression import expression_crop

    records = list(iter_records(load_records(stored_faces)))[:3]
    for rec in records:  # a face box inside the picture, off-centre, so the two crops differ
        w, h = open_image(rec.image).size
        rec.box = [0.1 * w, 0.2 * h, 0.7 * w, 0.9 * h]
    data = from_records(records, "faces", "all", crop_kind="expression")
    for rec, image in zip(records, data.images):
        assert np.array_equal(np.asarray(image), expression_crop(open_image(rec.image), rec.box))
        assert image.size[0] == image.size[1] and image.size != face_crop(rec).size
    assert data.fingerprint != from_records(records, "faces", "all").fingerprint
    with pytest.raises(FacevlmError, match="crop 'aligned'"):
        DatasetSpec(name="x", source="store", crop="aligned")


@pytest.fixture
def tiny_folder(tmp_path):
    from fakes import save_tiny_clip

    return save_tiny_clip(tmp_path / "tiny")


def test_calibrate_then_score_calibrated(tiny_folder, stored_faces):
    from facevlm.eval.calibrate import CalibrateConfig, calibrate, summary_lines
    from facevlm.eval.datasets import DatasetSpec, load_dataset
    from facevlm.eval.suite import TaskSpec
    from facevlm.eval.tasks import Context
    from facevlm.eval.tasks.zeroshot import attribute_scores, run

    cfg = CalibrateConfig(
        data=str(stored_faces), split="train", attributes=["expression", "Smiling"], meta_labels={}, folds=3
    )
    cal, path = calibrate(tiny_folder, cfg)
    saved = json.loads(path.read_text())
    assert set(saved["attributes"]) == {"expression", "Smiling"} and saved["fitted_on"].endswith("[train]")
    assert len(summary_lines(cal)) == 3
    torch.manual_seed(0)
    raw = build_model(ModelSpec(name="raw", kind="facevlm-clip", pretrained=tiny_folder))
    calibrated = build_model(
        ModelSpec(name="cal", kind="facevlm-clip", pretrained=tiny_folder, options={"calibrated": True})
    )
    test = load_dataset(DatasetSpec(name="faces", source="store", ref=str(stored_faces), split="test"))
    ctx = Context(n_boot=0)
    shift = attribute_scores(raw, test, "Smiling", ctx, 0.5) - attribute_scores(calibrated, test, "Smiling", ctx, 0.5)
    np.testing.assert_allclose(shift, cal.attributes["Smiling"].threshold, atol=1e-5)
    res = run(calibrated, test, TaskSpec(task="zeroshot", attributes=["expression", "Smiling"]), ctx)[0]
    assert set(res.extra["calibration"]) == {"expression", "Smiling"}
    assert res.extra["uncertain"] == [a for a in ("expression", "Smiling") if not cal.attributes[a].reliable]
    assert "calibration" not in run(raw, test, TaskSpec(task="zeroshot", attributes=["Smiling"]), ctx)[0].extra


def test_calibrate_refuses_the_held_out_split_and_uncalibrated_models(tiny_folder):
    from facevlm.eval.calibrate import CalibrateConfig

    with pytest.raises(FacevlmError, match="held out"):
        CalibrateConfig(split="dev")
    with pytest.raises(FacevlmError, match="no calibration.json"):
        build_model(ModelSpec(name="cal", kind="facevlm-clip", pretrained=tiny_folder, options={"calibrated": True}))


def test_calibrate_uses_only_identities_held_out_of_training(tiny_folder, stored_faces):
    from pathlib import Path

    import yaml

    from facevlm.clip.data import held_out
    from facevlm.data.store import iter_records, load_records
    from facevlm.eval.calibrate import CalibrateConfig, calibrate

    folder = Path(tiny_folder)
    name = Path(stored_faces).name
    cfg = CalibrateConfig(data=str(stored_faces), split="train", attributes=["Smiling"], meta_labels={}, folds=2)
    recipe = {"data": {"datasets": [name], "splits": ["train"]}}
    (folder / "config.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(FacevlmError, match="nothing held out"):  # it was trained on every face of the split
        calibrate(tiny_folder, cfg)
    recipe["data"]["holdout"] = {name: 0.5}
    (folder / "config.yaml").write_text(yaml.safe_dump(recipe))
    cal, _ = calibrate(tiny_folder, cfg)
    unseen = [r for r in iter_records(load_records(stored_faces, "train")) if held_out(r.identity, 0.5)]
    assert 0 < cal.attributes["Smiling"].n == len(unseen) < 24 and "holdout 0.5" in cal.fitted_on
