"""Encoders, zero-shot heads, top-k and the factory, on the asset-free tiny config."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facevlm.clip import inference
from facevlm.errors import FacevlmError


@pytest.fixture(scope="module")
def tiny():
    from facevlm.clip import load

    torch.manual_seed(0)
    return load("facevlm-clip-tiny")


def test_tiny_registered_with_open_clip(tiny) -> None:
    import open_clip

    assert "facevlm-clip-tiny" in open_clip.list_models()
    model = open_clip.create_model("facevlm-clip-tiny")  # open_clip's factory alone, after register()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in tiny.model.parameters())


def test_encode_shapes_and_normalisation(tiny) -> None:
    from fakes import toy_records

    images = [r.image for r in toy_records(5, seed=3)]
    emb = tiny.encode_images(images, batch_size=2)  # uneven last batch
    assert emb.shape == (5, tiny.embed_dim) and emb.dtype == torch.float32
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(5))
    torch.testing.assert_close(tiny.encode_images(images[:1]), emb[:1], rtol=1e-5, atol=1e-6)
    txt = tiny.encode_texts(["a smiling face", "a person wearing eyeglasses", "x"], batch_size=2)
    assert txt.shape == (3, tiny.embed_dim)
    torch.testing.assert_close(txt.norm(dim=-1), torch.ones(3))
    assert tiny.encode_images([]).shape == (0, tiny.embed_dim)


def test_image_paths_and_bad_files(tiny, tmp_path) -> None:
    from fakes import toy_records

    img = toy_records(1, seed=4)[0].image
    img.save(tmp_path / "a.png")
    torch.testing.assert_close(tiny.encode_images([tmp_path / "a.png"]), tiny.encode_images([img]))
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(FacevlmError, match="bad.png"):
        tiny.encode_images([tmp_path / "bad.png"])


def test_zero_shot_head_uses_the_shared_prompts(tiny) -> None:
    from facevlm.clip.prompts import attribute_prompts

    head = tiny.zero_shot_head("expression", negative_weight=0.5)
    table = attribute_prompts("expression")
    assert head.values == list(table)
    for i, value in enumerate(head.values):
        pos, states = table[value]
        torch.testing.assert_close(head.positive[i], inference.ensemble(tiny.model, tiny.tokenizer, pos))
        torch.testing.assert_close(
            head.negatives[i], torch.stack([inference.ensemble(tiny.model, tiny.tokenizer, s) for s in states])
        )
    with pytest.raises(FacevlmError, match="numeric"):
        tiny.zero_shot_head("age", allow_sensitive=True)


def test_zero_shot_head_on_constructed_embeddings() -> None:
    # three values along orthogonal axes; negatives point the opposite way
    pos = torch.eye(3, 8)
    head = inference.ZeroShotHead("expression", ["happy", "sad", "fear"], pos, [-pos[[i]] for i in range(3)], 0.5)
    images = F.normalize(
        torch.tensor([[0.9, 0.1, 0, 0, 0, 0, 0, 0], [0, 0.2, 1.0, 0, 0, 0, 0, 0], [0.1, 1.0, 0.3, 0, 0, 0, 0, 0]]),
        dim=-1,
    )
    labels, probs = head.predict(images)
    assert labels == ["happy", "fear", "sad"]
    torch.testing.assert_close(probs.sum(-1), torch.ones(3))
    # a negative prompt close to an image lowers that value's score
    negatives = [torch.eye(2, 8)[[1]], torch.eye(2, 8)[[0]]]
    head_neg = inference.ZeroShotHead("x", ["a", "b"], torch.eye(2, 8), negatives, 1.0)
    assert head_neg.scores(F.normalize(torch.tensor([[1.0, 0.9] + [0] * 6]), dim=-1)).argmax().item() == 0


def test_binary_head_needs_the_positive_to_beat_every_opposite_state() -> None:
    # positive along e0; three distinct opposite states along e1, e2, e3. An image close to one state
    # only (and nearer to e0 than to the *mean* of the states) is not positive.
    states = torch.eye(4, 8)[1:]
    head = inference.ZeroShotHead(
        "Smiling", ["true", "false"], torch.eye(2, 8), [states, torch.eye(1, 8)], 0.5, binary=True
    )
    images = F.normalize(torch.tensor([[0.6, 0.8, 0, 0, 0, 0, 0, 0], [0.9, 0.2, 0.2, 0.2, 0, 0, 0, 0]]), dim=-1)
    mean_state = F.normalize(states.mean(0), dim=-1)
    assert (images[0] @ torch.eye(8)[0]) > (images[0] @ mean_state)  # a mean of states would call it positive
    scores = head.scores(images)
    torch.testing.assert_close(scores[:, 1], -scores[:, 0])
    assert head.predict(images)[0] == ["false", "true"]


def test_sensitive_attributes_need_opt_in(tiny) -> None:
    with pytest.raises(FacevlmError, match="sensitive"):
        tiny.zero_shot_head("gender_presentation")
    head = tiny.zero_shot_head("gender_presentation", allow_sensitive=True)
    assert head.values == ["feminine", "masculine"] and head.positive.shape == (2, tiny.embed_dim)


def test_topk_and_recall() -> None:
    gallery = F.normalize(torch.randn(10, 16, generator=torch.Generator().manual_seed(0)), dim=-1)
    scores, idx = inference.topk(gallery[[3, 7]], gallery, k=3)
    assert idx[:, 0].tolist() == [3, 7] and scores.shape == (2, 3)
    assert inference.topk(gallery[0], gallery, k=50)[1].shape == (1, 10)
    assert inference.recall_at_k(gallery[[3, 7]], gallery, [[3], [2]], k=1) == 0.5
    with pytest.raises(FacevlmError, match="dim"):
        inference.topk(torch.zeros(1, 4), gallery)


def test_load_errors(tmp_path) -> None:
    from facevlm.clip import load

    with pytest.raises(FacevlmError, match="unknown model"):
        load("no-such-model")
    with pytest.raises(FacevlmError, match="open_clip_config.json"):
        load(tmp_path)
    with pytest.raises(FacevlmError, match="no such"):
        load(tmp_path / "missing")


def test_length_batches_bound_padding_and_keep_every_row_once() -> None:
    lengths = [17, 11, 12, 11, 40, 12, 15, 14, 12, 16]
    batches = inference.length_batches(lengths, batch_size=3, slack=0.1)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for rows in batches:
        assert len(rows) <= 3
        used, padded = sum(lengths[i] for i in rows), len(rows) * max(lengths[i] for i in rows)
        assert padded <= 1.1 * used
    assert [lengths[i] for i in batches[-1]] == [40]  # the outlier pads nobody
    assert inference.length_batches([5] * 7, batch_size=64) == [list(range(7))]
    assert inference.length_batches([], batch_size=4) == []


def test_text_batches_of_mixed_lengths_keep_the_input_order(tiny) -> None:
    texts = ["a face", "a smiling woman with round glasses and a beard", "a man", "a surprised child"] * 3
    one_by_one = torch.cat([inference.encode_texts(tiny.model, tiny.tokenizer, [t]) for t in texts])
    torch.testing.assert_close(inference.encode_texts(tiny.model, tiny.tokenizer, texts, 4), one_by_one)
