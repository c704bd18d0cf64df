"""DINOv2 ONNX -> Idefics3 vision tower, checked against the ONNX graph itself (needs `facevlm assets fetch`).

Two steps, two checks: the tensors as read (before any change) in a HF `Dinov2Model` reproduce the graph's
own backbone output, run by the `onnx` reference evaluator; the converted tower reproduces that Dinov2Model
run on the patch tokens alone, so layer-scale folding, renaming and the position resize are exact.
"""

from __future__ import annotations

import pytest
import torch

from facevlm.errors import FacevlmError
from facevlm.vlm.dinov2 import (
    BACKBONE_OUTPUT,
    IMAGENET_MEAN,
    IMAGENET_STD,
    convert_dinov2_onnx,
    fold_to_idefics3,
    grid_lookup_ok,
    read_dinov2_onnx,
)

PHOTOS = ("grace_hopper.jpg", "obama.jpg")


@pytest.fixture(scope="module")
def backbone(assets_home):
    return read_dinov2_onnx("dinov2-vits14-imgfocus")


@pytest.fixture(scope="module")
def pixels(assets_home):
    """Two real photos, centre square at 224 px by the crop rule, ImageNet-normalised: [2, 3, 224, 224]."""
    from facevlm import assets
    from facevlm.image import open_image
    from facevlm.vision.crop import face_crop
    from facevlm.vlm.bench_vit import pixel_values

    found = {s["file"].rsplit("/", 1)[-1]: s["path"] for s in assets.samples("image")}
    crops = [face_crop(open_image(found[name]), None, size=224) for name in PHOTOS]
    return pixel_values(crops, IMAGENET_MEAN, IMAGENET_STD)


@pytest.fixture(scope="module")
def onnx_backbone_output(assets_home, pixels):
    """The graph's own `/backbone/layernorm` output for `pixels`, by onnx's reference evaluator on the
    sub-graph that ends there (the saliency decoder cut off): ~8 s for two images, so once per module."""
    import onnx
    import onnx.utils
    from onnx.reference import ReferenceEvaluator

    from facevlm import assets

    model = onnx.shape_inference.infer_shapes(onnx.load(assets.path("dinov2-vits14-imgfocus") / "vit_s_focus.onnx"))
    sub = onnx.utils.Extractor(model).extract_model(["input_image"], [BACKBONE_OUTPUT])
    (out,) = ReferenceEvaluator(sub).run(None, {"input_image": pixels.numpy()})
    return torch.from_numpy(out)


def test_read_tensors_reproduce_the_onnx_backbone(backbone, pixels, onnx_backbone_output):
    assert backbone.config == {
        "hidden_size": 384,
        "num_hidden_layers": 12,
        "num_attention_heads": 6,
        "mlp_ratio": 4,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-6,
        "image_size": 518,  # 37 x 37 positions at patch 14
        "patch_size": 14,
        "num_channels": 3,
        "qkv_bias": True,
        "use_mask_token": False,
    }
    assert backbone.source["sha256"] == "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355"
    assert backbone.source["asset"] == "dinov2-vits14-imgfocus"
    with torch.no_grad():
        out = backbone.model()(pixels).last_hidden_state
    assert out.shape == onnx_backbone_output.shape == (2, 257, 384)
    # measured: max |diff| 1.4e-5 on outputs up to |8.5| (float32 numpy vs torch, different op order)
    torch.testing.assert_close(out, onnx_backbone_output, atol=5e-5, rtol=1e-5)


def _dinov2_patches_only(dino, pixels: torch.Tensor) -> torch.Tensor:
    """DINOv2 as trained, its own modules, but with the CLS token left out of the sequence."""
    emb = dino.embeddings
    tokens = emb.patch_embeddings(pixels)
    with_cls = torch.zeros(1, tokens.shape[1] + 1, tokens.shape[2])  # only its length is read
    hidden = tokens + emb.interpolate_pos_encoding(with_cls, pixels.shape[2], pixels.shape[3])[:, 1:]
    for layer in dino.encoder.layer:
        hidden = layer(hidden)
    return dino.layernorm(hidden)


def test_converted_tower_is_dinov2_without_cls(backbone, pixels):
    tower = fold_to_idefics3(backbone, 224)
    model = tower.model()  # strict load: exactly the Idefics3VisionTransformer keys
    assert tower.config == {
        "hidden_size": 384,
        "intermediate_size": 1536,
        "num_hidden_layers": 12,
        "num_attention_heads": 6,
        "num_channels": 3,
        "image_size": 224,
        "patch_size": 14,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-6,
    }
    assert (tower.image_mean, tower.image_std) == (IMAGENET_MEAN, IMAGENET_STD)
    assert tower.state_dict["embeddings.position_embedding.weight"].shape == (256, 384)
    dino = backbone.model()
    with torch.no_grad():
        expected = _dinov2_patches_only(dino, pixels)
        out = model(pixels).last_hidden_state
    assert out.shape == (2, 256, 384)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-5)
    # the layer scale is really folded, not dropped: the same tower without it is far off
    gamma = backbone.state_dict["encoder.layer.11.layer_scale2.lambda1"]
    unfolded = dict(tower.state_dict)
    unfolded["encoder.layers.11.mlp.fc2.weight"] = unfolded["encoder.layers.11.mlp.fc2.weight"] / gamma[:, None]
    model.load_state_dict(unfolded)
    with torch.no_grad():
        assert (model(pixels).last_hidden_state - expected).abs().max() > 0.1


@pytest.mark.parametrize("size", [225, 0, -14, 13])
def test_image_size_not_a_positive_multiple_of_14_is_refused(backbone, size):
    with pytest.raises(FacevlmError, match="image_size"):
        fold_to_idefics3(backbone, size)


def test_bad_size_is_refused_before_reading_the_file(assets_home):
    with pytest.raises(FacevlmError, match=r"image_size: 225 is not a multiple of the patch size 14 \(try 224\)"):
        convert_dinov2_onnx("dinov2-vits14-imgfocus", 225)
    with pytest.raises(FacevlmError, match="positive whole number"):
        convert_dinov2_onnx("/nonexistent.onnx", 0)


def test_sizes_whose_grid_idefics3_looks_up_wrongly_are_refused(backbone):
    with pytest.raises(FacevlmError, match=r"19x19 .* try 252"):
        fold_to_idefics3(backbone, 19 * 14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_grid_lookup_ok_agrees_with_transformers_idefics3(dtype):
    """`grid_lookup_ok` replays Idefics3's position lookup; here the real module's position ids decide. It
    also replays vLLM's (not installed here), so it may refuse a side transformers gets right, never pass
    one transformers gets wrong."""
    from transformers import Idefics3VisionConfig
    from transformers.models.idefics3.modeling_idefics3 import Idefics3VisionEmbeddings

    refused_by_vllm_only, seen = [], {}
    for side in range(1, 41):
        cfg = Idefics3VisionConfig(hidden_size=1, image_size=side, patch_size=1, num_attention_heads=1)
        emb = Idefics3VisionEmbeddings(cfg).to(dtype)
        emb.position_embedding.register_forward_hook(lambda _m, args, _out: seen.__setitem__("ids", args[0]))
        with torch.no_grad():
            emb(torch.zeros(1, 3, side, side, dtype=dtype), torch.ones(1, side, side, dtype=torch.bool))
        transformers_ok = torch.equal(seen["ids"][0], torch.arange(side * side))
        if grid_lookup_ok(side, dtype):
            assert transformers_ok, side
        elif transformers_ok:
            refused_by_vllm_only.append(side)
    if dtype == torch.float32:  # vLLM 0.32 computes index / side: these fail there, not in transformers
        assert refused_by_vllm_only == [23, 27, 37]
    assert grid_lookup_ok(16, dtype) and grid_lookup_ok(32, dtype)  # 224 and 448 px work in every dtype
