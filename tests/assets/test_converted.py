"""The converted models behave like the originals (needs `facevlm assets fetch`)."""

from __future__ import annotations

import json

import pytest

import facevlm.assets as assets


def test_smollm2_answers_paris(assets_home):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = assets.resolve("smollm2-135m-instruct")
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config, "vLLM refuses quant_method gguf"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert model.dtype == torch.float32
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=10, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


def test_timm_mobilenet_matches_torchvision(assets_home):
    import timm
    import torch
    import torchvision

    folder = assets.resolve("mobilenetv2-imagenet")
    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(torch.load(folder / "mobilenet_v2-b0353104.pth", map_location="cpu", weights_only=True))
    model = timm.create_model(
        "mobilenetv2_100",
        pretrained=True,
        pretrained_cfg_overlay={"file": str(folder / "timm_mobilenetv2_100.safetensors")},
    )
    reference.eval(), model.eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref_pooled = torch.nn.functional.adaptive_avg_pool2d(reference.features(x), 1).flatten(1)
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
        torch.testing.assert_close(pooled, ref_pooled, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model(x), reference(x), atol=1e-4, rtol=1e-5)
    assert pooled.shape == (2, 1280)


@pytest.mark.parametrize("name", list(assets.ASSETS))
def test_every_fetched_file_matches_manifest(assets_home, name):
    assert all(status == "ok" for _, status in assets.verify([name])[name])
