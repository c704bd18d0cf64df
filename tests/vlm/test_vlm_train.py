"""FaceVLM training: both stages run and learn, the adapter round-trips, QLoRA runs a step on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facevlm.errors import FacevlmError
from facevlm.vlm.config import ArchConfig, VLMRecipe


def _losses(run: Path) -> list[float]:
    return [row["loss"] for row in json.loads((run / "facevlm_vlm.json").read_text())["metrics"]["loss"]]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


@pytest.mark.parametrize("stage", ["align", "sft"])
def test_each_stage_lowers_the_loss(tiny_vlm, stage):
    losses = _losses(tiny_vlm[stage])
    assert len(losses) >= 20
    assert _mean(losses[-5:]) < 0.8 * _mean(losses[:5]), losses


def test_align_folder_is_a_stock_idefics3_the_auto_classes_load(tiny_vlm):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm["align"])
    processor = AutoProcessor.from_pretrained(tiny_vlm["align"])
    assert type(model).__name__ == "Idefics3ForConditionalGeneration"
    assert processor.image_seq_len == 4 and "<image>" in processor.tokenizer.get_vocab()
    assert model.config.text_config.vocab_size % 64 == 0


def _batch(processor, image):
    messages = [
        [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "Smiling?"}]}]
    ]
    return processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )


def test_adapter_reloads_onto_its_base_with_the_merged_models_logits(tiny_vlm):
    import torch
    from fakes import draw_face
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    sft = tiny_vlm["sft"]
    adapter_cfg = json.loads((sft / "adapter" / "adapter_config.json").read_text())
    assert Path(adapter_cfg["base_model_name_or_path"]) == sft / "base"  # align + the connector sft trained
    processor = AutoProcessor.from_pretrained(sft)
    import random

    batch = _batch(processor, draw_face(True, True, "black", random.Random(0)))
    base = AutoModelForImageTextToText.from_pretrained(sft / "base").eval()
    with torch.no_grad():
        plain = base(**batch).logits
        adapted = PeftModel.from_pretrained(base, sft / "adapter").eval()(**batch).logits
        merged = AutoModelForImageTextToText.from_pretrained(sft).eval()(**batch).logits
    assert not torch.allclose(plain, adapted, atol=1e-4)  # the adapter does something
    assert torch.allclose(adapted, merged, atol=1e-4)


def test_adapter_save_load_round_trip_gives_identical_logits(tiny_vlm, tmp_path):
    import random

    import torch
    from fakes import draw_face
    from peft import PeftModel

    from facevlm.vlm.build import load_vlm
    from facevlm.vlm.train import prepare_trainable

    cfg = VLMRecipe(stage="sft", init=str(tiny_vlm["align"]))
    model, processor = load_vlm(cfg.init)
    model = prepare_trainable(model, cfg)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    model.eval()
    batch = _batch(processor, draw_face(False, True, "blond", random.Random(1)))
    with torch.no_grad():
        before = model(**batch).logits
    model.save_pretrained(tmp_path / "adapter")
    base, _ = load_vlm(cfg.init)
    reloaded = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    with torch.no_grad():
        after = reloaded(**batch).logits
    assert torch.equal(before, after)


def test_qlora_runs_a_step_on_cpu_with_bitsandbytes(tiny_vlm, toy_dataset):
    import torch

    from facevlm.vlm.build import load_vlm
    from facevlm.vlm.config import DataMix, LoraSettings
    from facevlm.vlm.data import Collator, qa_samples
    from facevlm.vlm.train import prepare_trainable

    cfg = VLMRecipe(
        stage="sft",
        init=str(tiny_vlm["align"]),
        lora=LoraSettings(r=4, alpha=8, qlora=True),
        data=DataMix(datasets=[str(toy_dataset)]),
    )
    model, processor = load_vlm(cfg.init, quantize_4bit=True)
    assert any("Linear4bit" in type(m).__name__ for m in model.modules())
    model = prepare_trainable(model, cfg)
    batch = Collator(processor, 512)(qa_samples(cfg.data)[:2])
    loss = model(**batch).loss
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_" in n and p.requires_grad]
    assert grads and all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)
    assert torch.isfinite(loss)


def test_lora_targets_the_text_model_only(tiny_vlm):
    from facevlm.vlm.build import load_vlm
    from facevlm.vlm.train import prepare_trainable

    model, _ = load_vlm(str(tiny_vlm["align"]))
    model = prepare_trainable(model, VLMRecipe(stage="sft", init=str(tiny_vlm["align"])))
    lora = {n for n, _ in model.named_parameters() if "lora_A" in n}
    assert lora and all("text_model.layers" in n for n in lora)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vision": "clip"}, "arch.vision"),
        ({"image_size": 100}, "multiple of the patch size"),
        ({"image_size": 70, "scale_factor": 2}, "do not divide"),
    ],
)
def test_bad_arch_is_one_clear_error(kwargs, message):
    with pytest.raises(FacevlmError, match=message):
        ArchConfig(**kwargs)


def test_sft_needs_a_base_to_start_from():
    with pytest.raises(FacevlmError, match="init"):
        VLMRecipe(stage="sft")
