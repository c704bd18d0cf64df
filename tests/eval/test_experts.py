"""Expert baselines and the samples set on the fetched assets (real photos, real weights)."""

from __future__ import annotations

import numpy as np
import pytest

from facevlm.eval.models import ModelSpec, build_model
from facevlm.schema import EXPRESSIONS

pytestmark = pytest.mark.assets


@pytest.fixture(scope="module")
def samples_set(assets_home):
    from facevlm.eval.datasets import DatasetSpec, load_dataset

    return load_dataset(DatasetSpec(name="samples", source="samples", options={"frames_per_video": 2}))


def test_samples_set_carries_file_name_labels(samples_set):
    ids = set(samples_set.identities) - {""}
    assert {"Barack Obama", "Joe Biden"} <= ids and any(i.startswith("video:") for i in ids)
    assert set(samples_set.labels("expression")) - {""} <= {"surprise", "happy", "anger", "disgust"}


def test_dlib_identity_beats_random_on_real_faces(samples_set):
    from facevlm.eval.suite import TaskSpec
    from facevlm.eval.tasks import Context
    from facevlm.eval.tasks.identity import run

    cfg = TaskSpec(task="identity", fars=[0.1], max_pairs=0)
    ctx = Context(n_boot=0, group_attributes=())
    dlib = run(build_model(ModelSpec(name="dlib", kind="dlib-identity")), samples_set, cfg, ctx)[0]
    rand = run(build_model(ModelSpec(name="random", kind="random")), samples_set, cfg, ctx)[0]
    assert dlib.metrics["rank1"] >= 0.9 > rand.metrics["rank1"]
    assert dlib.metrics["roc_auc"] > max(0.8, rand.metrics["roc_auc"])


def test_expression_expert_and_imagenet_features(samples_set):
    expert = build_model(ModelSpec(name="expr", kind="expression-expert"))
    scores = expert.attribute_scores(samples_set.images[:3], "expression")
    assert scores.shape == (3, 7) and np.allclose(scores.sum(axis=1), 1, atol=1e-4)
    smiling = expert.attribute_scores(samples_set.images[:3], "Smiling")  # P(happy) - 0.5
    np.testing.assert_allclose(smiling, scores[:, EXPRESSIONS.index("happy")] - 0.5, atol=1e-6)
    assert expert.attribute_scores(samples_set.images[:1], "Eyeglasses") is None
    feats = build_model(ModelSpec(name="mnv2", kind="imagenet-features"))
    assert feats.encode_images(samples_set.images[:2]).shape == (2, 1280)
