"""Model plug-ins on tiny models built at test time: HF transformers CLIP, open_clip with reset
projections, the random baseline, the registry's errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from facevlm.errors import FacevlmError
from facevlm.eval.models import ModelSpec, build_model


def _byte_vocab() -> dict[str, int]:
    """CLIP's byte-to-unicode alphabet (every byte a token, with and without end-of-word): a complete
    if merge-free BPE vocabulary."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    chars = [chr(c) for c in cs]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


@pytest.fixture(scope="module")
def tiny_hf_clip(tmp_path_factory):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    d = tmp_path_factory.mktemp("hfclip")
    vocab = _byte_vocab()
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(vocab=str(d / "vocab.json"), merges=str(d / "merges.txt"))
    proc = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tok,
    )
    eos = vocab["<|endoftext|>"]
    cfg = CLIPConfig(
        text_config=dict(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=2,
            num_hidden_layers=1,
            vocab_size=len(vocab),
            max_position_embeddings=24,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=eos,
            pad_token_id=eos,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=2,
            num_hidden_layers=1,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    CLIPModel(cfg).save_pretrained(d)
    proc.save_pretrained(d)
    return d


def test_hf_clip_plugin(tiny_hf_clip):
    model = build_model(ModelSpec(name="hf", kind="hf-clip", model=str(tiny_hf_clip)))
    imgs = [Image.new("RGB", (40, 50), (i * 40, 10, 200)) for i in range(3)]
    emb = model.encode_images(imgs)
    txt = model.encode_texts(["a photo", "a much longer description than the tiny context length allows " * 3])
    assert emb.shape == (3, 16) and txt.shape == (2, 16)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert (
        model.fingerprint() == build_model(ModelSpec(name="hf", kind="hf-clip", model=str(tiny_hf_clip))).fingerprint()
    )


def test_open_clip_reset_projections_changes_only_projections(tiny_clip_config):
    import open_clip

    from facevlm.eval.models.openclip import register_config, reset_projections

    register_config("facevlm-eval-test-reset", tiny_clip_config)
    model = open_clip.create_model("facevlm-eval-test-reset")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = reset_projections(model, seed=0)
    assert sorted(names) == ["text_projection", "visual.proj"]
    after = model.state_dict()
    changed = [k for k in before if not (before[k] == after[k]).all()]
    assert sorted(changed) == ["text_projection", "visual.proj"]
    a = build_model(ModelSpec(name="a", kind="open_clip", model="facevlm-eval-test-reset", config=tiny_clip_config))
    b = build_model(
        ModelSpec(
            name="b",
            kind="open_clip",
            model="facevlm-eval-test-reset",
            config=tiny_clip_config,
            reset_projections=True,
            seed=1,
        )
    )
    assert a.fingerprint() != b.fingerprint() and b.pretrained.endswith("+reset-proj")


def test_random_baseline_is_deterministic_and_content_keyed():
    m = build_model(ModelSpec(name="r", kind="random", seed=3))
    imgs = [Image.new("RGB", (8, 8), (i, 0, 0)) for i in range(4)]
    e1, e2 = m.encode_images(imgs), m.encode_images(list(reversed(imgs)))
    assert np.allclose(e1, e2[::-1]) and not np.allclose(e1[0], e1[1])
    assert np.allclose(m.encode_texts(["x"]), m.encode_texts(["x"]))


def test_registry_errors():
    with pytest.raises(FacevlmError, match="unknown kind 'nope'"):
        build_model(ModelSpec(name="m", kind="nope"))
    with pytest.raises(FacevlmError, match="open_clip could not load"):
        build_model(ModelSpec(name="m", kind="open_clip", model="no-such-architecture"))


def test_facevlm_clip_plugin_encodes_exactly_like_clip_inference(tmp_path):
    """The harness's FaceCLIP embeddings are bit-identical to facevlm.clip's (the encoder the gallery and
    gateway use): one encoder, not a second copy that agrees only approximately."""
    import torch

    from facevlm.clip import inference, load

    torch.manual_seed(0)
    folder = load("facevlm-clip-tiny").save(tmp_path / "tiny")
    clip = load(folder)
    model = build_model(ModelSpec(name="tiny", kind="facevlm-clip", pretrained=str(folder), batch_size=3))
    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)) for _ in range(7)]
    imgs.append(Image.fromarray(rng.integers(0, 256, (30, 30, 4), dtype=np.uint8), "RGBA"))  # alpha on white
    texts = ["a smiling face", "a person wearing eyeglasses", "x"]
    expected = inference.encode_images(clip.model, clip.preprocess, imgs, batch_size=3).numpy()
    assert np.array_equal(model.encode_images(imgs), expected)
    assert np.array_equal(model.encode_images(imgs, progress=True), expected)
    assert np.array_equal(model.encode_texts(texts), clip.encode_texts(texts).numpy())
    assert not np.array_equal(expected[0], expected[1])  # real, distinct embeddings


def test_facevlm_clip_without_a_checkpoint_is_an_error(eval_home):
    with pytest.raises(FacevlmError, match="no trained FaceCLIP checkpoint"):
        build_model(ModelSpec(name="m", kind="facevlm-clip", model="facevlm-clip-tiny"))
