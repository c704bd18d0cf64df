"""The benchmark's zeroshot task scores with the same prompts, ensembles and negatives as FaceCLIP's
own zero-shot head (facevlm.clip.prompts), through the model-agnostic EmbeddingModel interface."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def tiny_pair(stored_faces):
    from facevlm.clip import load
    from facevlm.data.store import iter_records, load_records
    from facevlm.eval.datasets import from_records
    from facevlm.eval.models.openclip import OpenClipModel

    torch.manual_seed(0)
    clip = load("facevlm-clip-tiny")
    data = from_records(iter_records(load_records(stored_faces)), "faces", "all")
    model = OpenClipModel(clip.model, clip.preprocess, clip.tokenizer, "tiny", "random-init")
    return clip, model, data


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_categorical_scores_match_the_faceclip_head(tiny_pair, weight: float) -> None:
    from facevlm.eval.tasks import Context
    from facevlm.eval.tasks.zeroshot import attribute_scores

    clip, model, data = tiny_pair
    scores = attribute_scores(model, data, "expression", Context(), weight)
    head = clip.zero_shot_head("expression", negative_weight=weight)
    expected = head.scores(clip.encode_images(data.images)).numpy()
    assert scores.shape == (len(data), len(head.values))
    np.testing.assert_allclose(scores, expected, atol=2e-4)


def test_binary_score_is_positive_minus_opposite_state(tiny_pair, tmp_path) -> None:
    from facevlm.eval.tasks import Context
    from facevlm.eval.tasks.zeroshot import attribute_scores

    clip, model, data = tiny_pair
    ctx = Context(cache_dir=tmp_path)
    scores = attribute_scores(model, data, "Smiling", ctx, 0.5)
    head = clip.zero_shot_head("Smiling", negative_weight=0.0)  # columns: true, false
    img = clip.encode_images(data.images)
    np.testing.assert_allclose(scores, head.scores(img).numpy()[:, 0], atol=2e-4)
    closest_state = (img @ head.negatives[0].T).amax(-1)
    np.testing.assert_allclose(scores, (img @ head.positive[0] - closest_state).numpy(), atol=2e-4)
    # the prompt ensembles are cached (the positive side + one per opposite state; the "false" side is
    # never embedded): a second pass scores identically
    from facevlm.clip.prompts import BINARY

    assert len(list(tmp_path.rglob("txt-*.npy"))) == 1 + len(BINARY["Smiling"][1])
    np.testing.assert_array_equal(attribute_scores(model, data, "Smiling", ctx, 0.5), scores)
