"""The default facevlm-clip-small: towers from the fetched assets, and a saved folder that plain
open_clip loads (HF text tower config and tokenizer travel inside it, even after a move)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.assets


def test_small_from_assets_saves_and_loads_anywhere(assets_home: Path, tmp_path: Path) -> None:
    import open_clip
    from safetensors.torch import load_file

    from facevlm.assets import resolve
    from facevlm.clip import load
    from facevlm.clip.factory import create, model_config
    from facevlm.clip.model import FaceCLIP

    built = create("facevlm-clip-small")
    trunk = load_file(str(Path(resolve("mobilenetv2-imagenet")) / "timm_mobilenetv2_100.safetensors"))
    torch.testing.assert_close(built.model.visual.trunk.conv_stem.weight, trunk["conv_stem.weight"])
    assert type(built.model.text).__name__ == "HFTextEncoder"

    clip = FaceCLIP(built.model, built.preprocess, built.tokenizer, model_config("facevlm-clip-small"))
    texts = ["a smiling woman with long blond hair wearing eyeglasses.", "a sad face."]
    ref = clip.encode_texts(texts)
    moved = tmp_path / "moved"
    shutil.move(str(clip.save(tmp_path / "saved")), moved)
    torch.testing.assert_close(load(moved).encode_texts(texts), ref, rtol=1e-5, atol=1e-6)

    from facevlm.clip.checkpoint import relocate

    relocate(moved)  # plain open_clip needs the folder's own path in the config after a move
    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{moved}")
    tok = open_clip.get_tokenizer(f"local-dir:{moved}")
    model.eval()
    with torch.no_grad():
        out = torch.nn.functional.normalize(model.encode_text(tok(texts)), dim=-1)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
