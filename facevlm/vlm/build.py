"""Make FaceVLM's model and processor: compose a stock Idefics3 from parts, or load any image-text model.

`compose` joins a text LM (SmolLM2-135M-Instruct by default) and a ViT tower (DINOv2 ViT-S/14 converted by
facevlm.vlm.dinov2, or the same shape at random) with Idefics3's pixel-shuffle connector. The result is a
plain `Idefics3ForConditionalGeneration` + `Idefics3Processor` folder: transformers loads it with the Auto
classes and vLLM serves it with its own `idefics3.py`, no patches. What has to be added for that:
- the tokenizer gets Idefics3's image tokens (`<image>`, `<fake_token_around_image>`, `<global-img>`, the
  tile tags) as special tokens. `<tool_call>`/`</tool_call>` are NOT added: spelled with the LM's existing
  tokens, a LoRA learns to write them within a few dozen steps, whereas a new token's output row (tied to
  its embedding, which LoRA does not train) starts at the mean embedding and is barely ever sampled;
  vLLM's `hermes` tool parser matches the tags as text either way;
- the embedding matrix grows to the new vocabulary (padded to a multiple of 64) with the new rows set to
  the mean of the old ones, so the new tokens start as an "average" token instead of noise;
- one chat template (CHAT_TEMPLATE): SmolLM2's ChatML turns, `<image>` where an image part is, assistant
  tool calls as Hermes-style `<tool_call>{json}</tool_call>`, and `{% generation %}` around what the
  assistant says so training masks everything else out of the loss.
One tile per image (`do_image_splitting: false`): face crops are small and square.
"""

from __future__ import annotations

import re
from typing import Any

from facevlm.errors import FacevlmError
from facevlm.vlm.config import ArchConfig

IMAGE_TOKENS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"] + [
    f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)
]
FULL_PRECISION = ["vision_model", "connector", "vision_tower", "multi_modal_projector", "visual", "merger"]

IDEFICS3_IMAGE = "<image>"


def chat_template(image: str = IDEFICS3_IMAGE) -> str:
    """The one FaceVLM chat template: ChatML (SmolLM2's own format), string or part-list content, each image
    part written as `image` (the processor's placeholder, which it expands into that image's tokens:
    `<image>` for Idefics3 and LLaVA, `<|vision_start|><|image_pad|><|vision_end|>` for Qwen2-VL), assistant
    tool calls rendered the way vLLM's hermes parser reads them back, `tool` results as their own turn, and
    `{% generation %}` around what the assistant says (the training loss mask)."""
    if "'" in image or "\\" in image:
        raise FacevlmError(f"chat template: the image placeholder {image!r} may not contain quotes or backslashes")
    return (
        "{%- for message in messages -%}"
        "{{- '<|im_start|>' + message['role'] + '\n' -}}"
        "{%- if message['role'] == 'assistant' -%}{%- generation -%}"
        "{%- if message['content'] is string -%}{{- message['content'] -}}"
        "{%- elif message['content'] -%}{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}{%- endfor -%}{%- endif -%}"
        "{%- for call in message.get('tool_calls') or [] -%}"
        "{{- '<tool_call>\n{\"name\": \"' + call['function']['name'] + '\", \"arguments\": ' -}}"
        "{%- if call['function']['arguments'] is string -%}{{- call['function']['arguments'] -}}"
        "{%- else -%}{{- call['function']['arguments'] | tojson -}}{%- endif -%}"
        "{{- '}\n</tool_call>' -}}"
        "{%- endfor -%}"
        "{{- '<|im_end|>' -}}{%- endgeneration -%}{{- '\n' -}}"
        "{%- else -%}"
        "{%- if message['content'] is string -%}{{- message['content'] -}}"
        "{%- elif message['content'] -%}{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'text' -%}{{- part['text'] -}}"
        f"{{%- elif part['type'] in ('image', 'image_url') -%}}{{{{- '{image}' -}}}}{{%- endif -%}}"
        "{%- endfor -%}{%- endif -%}"
        "{{- '<|im_end|>\n' -}}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"
    )


CHAT_TEMPLATE = chat_template()


GENERATION_MARK = re.compile(r"\{%-?\s*generation\s*-?%\}")
QWEN_VISION = ("<|vision_start|>", "<|vision_end|>")  # the Qwen2-VL family wraps each image's tokens in these


def has_generation_marks(template: str | None) -> bool:
    """Whether a chat template marks the assistant's spans: the loss mask is read from those marks."""
    return bool(template and GENERATION_MARK.search(template))


def image_placeholder(processor: Any) -> str:
    """What a chat template writes for one image part of this processor's model: its image token, between
    the vision start/end tokens where the tokenizer has them (Qwen2-VL)."""
    token = getattr(processor, "image_token", None) or IDEFICS3_IMAGE
    vocab = processor.tokenizer.get_vocab()
    if all(t in vocab for t in QWEN_VISION):
        return QWEN_VISION[0] + token + QWEN_VISION[1]
    return token


def adopt_chat_template(model: Any, processor: Any, source: str) -> None:
    """Give a model whose chat template has no `{% generation %}` marks (most hub models: SmolVLM, Qwen2-VL,
    LLaVA) the project's template with its own image placeholder, and `<|im_end|>` as an end of turn, so
    training can mask the loss and generation stops where the tuned model ends its turn. A template with
    marks is kept. The template is ChatML, so an LM whose tokenizer has no ChatML tokens is refused."""
    if has_generation_marks(getattr(processor, "chat_template", None)):
        return
    vocab = processor.tokenizer.get_vocab()
    if "<|im_start|>" not in vocab or "<|im_end|>" not in vocab:
        raise FacevlmError(
            f"{source}: its chat template has no {{% generation %}} marks (the loss mask) and its tokenizer no "
            "ChatML tokens for FaceVLM's template; give the folder a chat template that marks the assistant's text"
        )
    processor.chat_template = chat_template(image_placeholder(processor))
    eos = model.generation_config.eos_token_id
    eos = [] if eos is None else eos if isinstance(eos, list) else [eos]
    end = vocab["<|im_end|>"]
    model.generation_config.eos_token_id = eos if end in eos else [end, *eos]


def resolve_source(name_or_path: str) -> str:
    """A trained model's name (a folder under $FACEVLM_HOME/models), an asset name or a local folder resolve
    to a local path; anything else is handed to transformers unchanged, as a hub id."""
    from facevlm.assets import resolve
    from facevlm.paths import models_dir

    trained = models_dir() / name_or_path
    if "/" not in name_or_path and (trained / "config.json").is_file():
        return str(trained)
    return str(resolve(name_or_path))


def chat_tokenizer(text_source: str, image_tokens: list[str] = IMAGE_TOKENS, image: str = IDEFICS3_IMAGE) -> Any:
    """A ChatML LM's tokenizer made a VLM's: the architecture's image tokens added as special tokens (never
    split, never merged with text), a pad token, and the chat template with `image` as the image placeholder.
    Idefics3 by default; a Qwen2-VL or LLaVA folder built from the same LM passes its own tokens."""
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(text_source)
    tok.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, normalized=False, special=True) for t in image_tokens]}
    )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.chat_template = chat_template(image)
    return tok


def build_processor(
    text_source: str, arch: ArchConfig, image_mean: tuple[float, ...], image_std: tuple[float, ...]
) -> Any:
    """Idefics3Processor: the LM's tokenizer plus image tokens, one `image_size` tile per image."""
    from transformers import Idefics3ImageProcessor, Idefics3Processor

    image_processor = Idefics3ImageProcessor(
        do_image_splitting=False,
        size={"longest_edge": arch.image_size},
        max_image_size={"longest_edge": arch.image_size},
        image_mean=list(image_mean),
        image_std=list(image_std),
    )
    return Idefics3Processor(
        image_processor=image_processor,
        tokenizer=chat_tokenizer(text_source),
        image_seq_len=arch.image_seq_len,
        chat_template=CHAT_TEMPLATE,
    )


def _vision_tower(arch: ArchConfig) -> tuple[dict[str, Any], dict[str, Any] | None, tuple, tuple]:
    """(vision config, converted weights or None for random init, image mean, image std)."""
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    shape = {
        "hidden_size": 384,
        "intermediate_size": 1536,
        "num_hidden_layers": 12,
        "num_attention_heads": 6,
        "patch_size": arch.patch_size,
        "image_size": arch.image_size,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-6,
    }
    tiny = {k[7:]: v for k, v in (arch.tiny or {}).items() if k.startswith("vision_")}
    if arch.vision == "random":
        from facevlm.vlm.dinov2 import grid_lookup_ok

        side = arch.image_size // arch.patch_size
        if not grid_lookup_ok(side):  # Idefics3's position lookup misplaces patches on some grid sides
            raise FacevlmError(
                f"arch.image_size: {arch.image_size} px ({side} patches a side) hits Idefics3's "
                "position-lookup rounding; use 224 or 448"
            )
        return {**shape, **tiny}, None, *imagenet
    from facevlm.vlm.dinov2 import convert_dinov2_onnx

    tower = convert_dinov2_onnx(resolve_source(arch.vision_weights), image_size=arch.image_size)
    if tiny:
        raise FacevlmError("arch.tiny: vision_* overrides only apply to vision: random")
    return dict(tower.config), tower.state_dict, tuple(tower.image_mean), tuple(tower.image_std)


def compose(arch: ArchConfig) -> tuple[Any, Any]:
    """A fresh Idefics3ForConditionalGeneration from a text LM and a vision tower; connector at random."""
    import torch
    from transformers import AutoModelForCausalLM, Idefics3Config, Idefics3ForConditionalGeneration

    text_source = resolve_source(arch.text)
    vision_cfg, vision_state, mean, std = _vision_tower(arch)
    processor = build_processor(text_source, arch, mean, std)
    tok = processor.tokenizer
    # tests/smoke runs: the same LM with fewer layers (`tiny: {num_hidden_layers: 2}` keeps its pretrained
    # embeddings and first layers, so a frozen LM still reads text and the connector has something to align to)
    text_tiny = {k: v for k, v in (arch.tiny or {}).items() if not k.startswith("vision_")}
    lm = AutoModelForCausalLM.from_pretrained(text_source, dtype=torch.float32, **text_tiny)
    old_rows = lm.get_input_embeddings().weight.shape[0]
    lm.resize_token_embeddings(len(tok), pad_to_multiple_of=64, mean_resizing=False)
    with torch.no_grad():
        emb = lm.get_input_embeddings().weight
        emb[old_rows:] = emb[:old_rows].mean(0, keepdim=True)
    text_cfg = lm.config
    tie = bool(getattr(text_cfg, "tie_word_embeddings", False))
    config = Idefics3Config(
        vision_config=vision_cfg,
        text_config=text_cfg.to_dict(),
        scale_factor=arch.scale_factor,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=tie,
    )
    model = Idefics3ForConditionalGeneration(config)
    model.model.text_model.load_state_dict(lm.model.state_dict())
    if not tie:
        model.lm_head.load_state_dict(lm.lm_head.state_dict())
    if vision_state is not None:
        missing, unexpected = model.model.vision_model.load_state_dict(vision_state, strict=False)
        if missing or unexpected:
            raise FacevlmError(f"vision tower: {len(missing)} missing, {len(unexpected)} unexpected weights")
    model.tie_weights()
    model.generation_config.eos_token_id = [tok.convert_tokens_to_ids("<|im_end|>")]
    model.generation_config.pad_token_id = tok.pad_token_id
    return model.float(), processor


def bf16_available(*, faster: bool = True) -> bool:
    """bf16 matmuls in hardware (a CUDA GPU that has them, or a CPU with AVX512-BF16 / AMX, oneDNN) and, with
    `faster`, measurably faster than float32 there (`hardware.bf16_faster`: "auto" picks bf16 only then).
    FACEVLM_VLM_FP32=1 turns bf16 off (e.g. to compare against float32)."""
    import os

    import torch

    from facevlm.hardware import bf16_faster, native_bf16

    if os.environ.get("FACEVLM_VLM_FP32"):
        return False
    return (bf16_faster if faster else native_bf16)("cuda" if torch.cuda.is_available() else "cpu")


def load_vlm(source: str, *, quantize_4bit: bool = False) -> tuple[Any, Any]:
    """Any image-text-to-text folder or hub id (ours, SmolVLM, Qwen2-VL, LLaVA…) with its processor."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = resolve_source(source)
    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if quantize_4bit:
        from transformers import BitsAndBytesConfig

        # QLoRA quantizes the LM only: the vision tower and connector are small, and they may train
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16 if torch.cuda.is_available() else torch.float32,
            llm_int8_skip_modules=[f".*{name}" for name in (*FULL_PRECISION, "lm_head")],  # prefix regexes
        )
    try:
        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise FacevlmError(f"cannot load the VLM {source}: {str(exc).splitlines()[0]}") from None
    if getattr(processor, "chat_template", None) is None:
        raise FacevlmError(f"{source}: its processor has no chat template")
    return model, processor
