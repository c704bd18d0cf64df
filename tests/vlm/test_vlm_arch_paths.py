"""The base model is a recipe field: the same training and in-process inference code runs on a Qwen2-VL and
a LLaVA model folder (`init:`), here tiny random ones (tests/vlm/conftest.py): both stages train, the
adapter is a peft folder that reloads onto its base with the merged model's logits, and FaceChat answers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from fakes import draw_face

from facevlm.vlm.config import DataMix, LoraSettings, VLMRecipe

# what each architecture calls its parts (the names facevlm.vlm.train freezes and trains by)
PARTS = {
    "qwen2_vl": ("model.visual", "model.visual.merger", "Qwen2VLForConditionalGeneration"),
    "llava": ("model.vision_tower", "model.multi_modal_projector", "LlavaForConditionalGeneration"),
}


@pytest.fixture(scope="module", params=sorted(PARTS))
def runs(request, tiny_arch_folder, toy_dataset, tmp_path_factory) -> dict[str, Path]:
    """{"arch", "init": the tiny folder, "align": stage (a) run, "sft": stage (b) run} for one architecture."""
    from facevlm.vlm.train import train

    arch = request.param
    init = tiny_arch_folder(arch)
    root = tmp_path_factory.mktemp(f"runs-{arch}")
    common = {"data": DataMix(datasets=[str(toy_dataset)]), "batch_size": 4, "log_every": 1, "warmup_steps": 1}
    align = VLMRecipe(stage="align", init=str(init), steps=3, lr=1e-2, out=str(root / "align"), **common)
    out = {"arch": arch, "init": init, "align": train(align, progress=False)}
    lora = LoraSettings(r=4, alpha=8)
    sft = VLMRecipe(stage="sft", init=str(out["align"]), steps=3, lr=5e-3, lora=lora, out=str(root / "sft"), **common)
    out["sft"] = train(sft, progress=False)
    return out


def _metrics(run: Path) -> dict:
    return json.loads((run / "facevlm_vlm.json").read_text())["metrics"]


def _load(folder: Path):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(folder).eval()


def _batch(folder: Path):
    from transformers import AutoProcessor

    face = draw_face(True, False, "black", random.Random(3))
    messages = [[{"role": "user", "content": [{"type": "image", "image": face}, {"type": "text", "text": "Smiling?"}]}]]
    return AutoProcessor.from_pretrained(folder).apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )


def test_align_trains_the_connector_and_nothing_else(runs):
    vision, connector, cls = PARTS[runs["arch"]]
    before, after = _load(runs["init"]), _load(runs["align"])
    assert type(after).__name__ == cls
    old, new = dict(before.named_parameters()), dict(after.named_parameters())
    changed = {n for n in new if not (new[n] == old[n]).all()}
    assert changed and all(n.startswith(connector + ".") for n in changed), sorted(changed)
    n_connector = sum(p.numel() for p in after.get_submodule(connector).parameters())
    metrics = _metrics(runs["align"])
    assert metrics["trainable_params"] == n_connector and metrics["steps_done"] == 3
    assert all(row["loss"] > 0 for row in metrics["loss"])


def test_sft_adapter_is_a_peft_lora_on_the_lm_and_reloads_with_the_merged_logits(runs):
    import torch
    from peft import PeftModel

    sft = runs["sft"]
    adapter = json.loads((sft / "adapter" / "adapter_config.json").read_text())
    assert Path(adapter["base_model_name_or_path"]) == sft / "base"  # align + the connector sft trained
    base = _load(sft / "base")
    adapted = PeftModel.from_pretrained(base, sft / "adapter").eval()
    lora = {n for n, _ in adapted.named_parameters() if "lora_A" in n}
    assert lora and all(".language_model.layers." in n for n in lora)  # the LM only: what vLLM can load
    batch = _batch(sft)
    with torch.no_grad():
        merged = _load(sft)(**batch).logits
        assert torch.allclose(adapted(**batch).logits, merged, atol=1e-4)
        assert not torch.allclose(_load(runs["align"])(**batch).logits, merged, atol=1e-4)  # sft changed it


def test_face_chat_answers_an_image_question_on_the_merged_folder(runs, monkeypatch):
    from facevlm.vlm.inference import FaceChat

    monkeypatch.setenv("FACEVLM_VLM_FP32", "1")
    chat = FaceChat(str(runs["sft"]), crop="never")
    face = draw_face(False, True, "blond", random.Random(4))
    reply = chat.ask([face], "Is this person smiling?", max_new_tokens=6)
    text_only = chat.generate([[{"role": "user", "content": "Is this person smiling?"}]], max_new_tokens=1)[0]
    assert reply.prompt_tokens > text_only.prompt_tokens  # the image's tokens are in the prompt
    # a random model's greedy tokens may all be special ones (decoded away): any continuation is an answer
    assert reply.completion_tokens > 0 and reply.finish_reason in ("stop", "length", "tool_calls")


# A hub-style template: the model's own turns, no `{% generation %}` marks (SmolVLM's, Qwen2-VL's, LLaVA's)
HUB_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<image>{% else %}{{ p['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
)
PLACEHOLDERS = {"qwen2_vl": "<|vision_start|><|image_pad|><|vision_end|>", "llava": "<image>"}


@pytest.mark.parametrize("arch", sorted(PARTS))
def test_a_template_without_loss_marks_gets_the_projects_with_the_models_image_placeholder(
    arch, tiny_arch_folder, toy_dataset
):
    from facevlm.errors import FacevlmError
    from facevlm.vlm.build import adopt_chat_template, chat_template, load_vlm
    from facevlm.vlm.data import Collator, qa_samples

    model, processor = load_vlm(str(tiny_arch_folder(arch)))
    processor.chat_template = HUB_TEMPLATE
    model.generation_config.eos_token_id = 0
    with pytest.raises(FacevlmError, match="generation"):
        Collator(processor, 512)  # it would mask every sample out
    adopt_chat_template(model, processor, arch)
    assert processor.chat_template == chat_template(PLACEHOLDERS[arch])
    assert model.generation_config.eos_token_id == [processor.tokenizer.convert_tokens_to_ids("<|im_end|>"), 0]
    batch = Collator(processor, 512)(qa_samples(DataMix(datasets=[str(toy_dataset)], max_samples=4)))
    assert batch is not None and int((batch["labels"] != -100).sum()) > 0


def test_a_tokenizer_without_chatml_tokens_is_refused_in_one_line(tiny_arch_folder, tiny_lm_dir):
    from transformers import AutoTokenizer

    from facevlm.errors import FacevlmError
    from facevlm.vlm.build import adopt_chat_template, load_vlm

    model, processor = load_vlm(str(tiny_arch_folder("llava")))
    processor.chat_template, processor.tokenizer = HUB_TEMPLATE, AutoTokenizer.from_pretrained(tiny_lm_dir)
    with pytest.raises(FacevlmError, match="no ChatML tokens") as err:
        adopt_chat_template(model, processor, "some/llava")
    assert "\n" not in str(err.value)
