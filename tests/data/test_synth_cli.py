"""`facevlm data synth` end to end (stored dataset + counts), and the probe's frozen backbone."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from facevlm.data.synth import SynthConfig, generate
from facevlm.data.synth.cli import synth


def test_synth_command_saves_a_loadable_dataset_and_prints_counts(tmp_path):
    from facevlm.data.store import iter_records, load_records

    out = tmp_path / "faces"
    result = CliRunner().invoke(
        synth,
        [
            "--n-identities",
            "2",
            "--per-identity",
            "2",
            "--size",
            "128",
            "--workers",
            "1",
            "--out",
            str(out),
            "--one-factor",
            "eyewear",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "12 records" in result.output and "Eyeglasses: 8/12 true" in result.output
    assert "sunglasses: 4/12 true" in result.output
    recs = list(iter_records(load_records(out)))
    assert len(recs) == 12 and recs[0].image.size == (128, 128)
    assert {r.meta["probe_value"] for r in recs} == {"none", "eyeglasses", "sunglasses"}
    fresh = next(generate(SynthConfig(2, 2, 128, 0, "eyewear"), workers=1))
    assert np.array_equal(np.asarray(recs[0].image), np.asarray(fresh.image))  # PNG round trip is lossless


def test_synth_command_rejects_an_unknown_factor(tmp_path):
    result = CliRunner().invoke(synth, ["--out", str(tmp_path / "x"), "--one-factor", "nose"])
    assert result.exit_code != 0 and "nose" in result.output


def test_probe_backbone_embeds_face_crops(assets_home):
    from facevlm.data.synth.probe import features, linear_probe, load_backbone

    recs = list(generate(SynthConfig(n_identities=8, per_identity=2, size=128, seed=0), workers=1))
    feats = features(recs, load_backbone("mobilenetv2-imagenet"), batch_size=8)
    assert feats.shape == (16, 1280) and np.isfinite(feats).all() and feats.std(0).max() > 0
    results = linear_probe(feats, recs, test_fraction=0.25, seed=0)
    assert {r.task for r in results} >= {"Eyeglasses", "expression"}
    assert all(r.n_train == 12 and r.n_test == 4 for r in results)
    # accuracy and the majority rate are fractions of the 4 held-out faces, not arbitrary floats
    assert all(round(r.accuracy * 4, 6).is_integer() and round(r.majority * 4, 6).is_integer() for r in results)
