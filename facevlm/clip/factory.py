"""Build FaceCLIP models through open_clip's own factory.

Our architectures are plain open_clip JSON configs (model_configs/*.json) registered with
`open_clip.add_model_config`, exactly like open_clip's bundled configs, so `open_clip.create_model`,
`open_clip.get_tokenizer` and tools built on them (CLIP_benchmark, open_clip_train) accept the names
once `register()` has run. The configs name the public hub ids of their pretrained towers; `register()`
writes copies in which those ids point at the locally fetched assets (offline machines), so nothing is
ever downloaded when the assets are present.

Tower weights that open_clip cannot load by itself (the MobileNetV2 trunk lives under `visual.trunk.*`
while the asset uses timm's bare keys) are loaded here, strictly, after open_clip built the model.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facevlm import assets, paths
from facevlm.errors import AssetError, FacevlmError

CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Hub ids written in our JSON configs -> the facevlm asset that holds the same files offline.
HUB_TO_ASSET: dict[str, str] = {"sentence-transformers/all-MiniLM-L6-v2": "minilm-l6"}


@dataclass(frozen=True)
class TowerInit:
    """Pretrained tower weights of one of our configs that open_clip does not load by itself."""

    image_asset: str | None = None  # asset name
    image_file: str | None = None  # file inside the asset, timm keys of the image trunk
    preprocess: dict[str, Any] = field(default_factory=dict)  # mean/std the image trunk was trained with


TOWERS: dict[str, TowerInit] = {
    "facevlm-clip-small": TowerInit(
        "mobilenetv2-imagenet", "timm_mobilenetv2_100.safetensors", {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    ),
    "facevlm-clip-vit-b16": TowerInit(),
    "facevlm-clip-tiny": TowerInit(),
}
DEFAULT_MODEL = "facevlm-clip-small"

_lock = threading.Lock()
_registered: Path | None = None


def _local_tower(hub_id: str) -> str:
    """The fetched asset folder standing in for `hub_id`, or the hub id when it is not fetched."""
    asset = HUB_TO_ASSET.get(hub_id)
    if asset is None:
        return hub_id
    try:
        return str(assets.path(asset))
    except AssetError:
        return hub_id


def register() -> Path:
    """Register our configs with open_clip (idempotent per process) and return the folder used.

    Asset paths are machine-specific, so resolved copies of the JSON files go to
    `$FACEVLM_HOME/models/open_clip_configs/` (written atomically: several processes may register at once).
    """
    global _registered
    with _lock:
        if _registered is not None:
            return _registered
        import open_clip

        out = paths.models_dir() / "open_clip_configs"
        out.mkdir(parents=True, exist_ok=True)
        for src in sorted(CONFIG_DIR.glob("*.json")):
            cfg = json.loads(src.read_text())
            text = cfg.get("text_cfg", {})
            for key in ("hf_model_name", "hf_tokenizer_name"):
                if key in text:
                    text[key] = _local_tower(text[key])
            tmp = out / f".{src.stem}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(cfg, indent=2))
            os.replace(tmp, out / src.name)
        open_clip.add_model_config(out)
        _registered = out
        return out


def model_config(name: str) -> dict[str, Any]:
    """The (registered, resolved) open_clip config of a model name; FacevlmError if unknown."""
    register()
    import open_clip

    cfg = open_clip.get_model_config(name)
    if cfg is None:
        ours = ", ".join(TOWERS)
        raise FacevlmError(f"unknown model {name!r}: not one of ours ({ours}) nor in open_clip.list_models()")
    return cfg


def _check_assets(name: str, cfg: dict[str, Any]) -> None:
    """Fail with the asset's name before open_clip tries (and fails) to reach the hub."""
    for key in ("hf_model_name", "hf_tokenizer_name"):
        ref = cfg.get("text_cfg", {}).get(key)
        if ref in HUB_TO_ASSET:
            assets.path(HUB_TO_ASSET[ref])  # raises AssetError naming what to fetch
    init = TOWERS.get(name)
    if init and init.image_asset:
        assets.path(init.image_asset)


def _load_image_trunk(model: Any, init: TowerInit) -> None:
    from safetensors.torch import load_file

    file = assets.path(init.image_asset) / init.image_file
    if not file.is_file():
        raise AssetError(f"{file}: missing from asset {init.image_asset}; run `facevlm assets fetch`")
    state = load_file(str(file))
    result = model.visual.trunk.load_state_dict(state, strict=False)
    unexpected = [k for k in result.unexpected_keys if not k.startswith("classifier.")]
    if result.missing_keys or unexpected:
        raise AssetError(
            f"{file}: does not match the image trunk (missing {result.missing_keys[:3]}, unexpected {unexpected[:3]})"
        )


@dataclass
class Built:
    """A model with its train/eval transforms and tokenizer, as open_clip hands them out."""

    name: str
    model: Any
    train_transform: Callable
    preprocess: Callable
    tokenizer: Any


def create(
    name: str = DEFAULT_MODEL,
    pretrained: str | None = None,
    *,
    device: str = "cpu",
    precision: str = "fp32",
    pretrained_towers: bool = True,
    aug_cfg: dict[str, Any] | None = None,
    **model_kwargs: Any,
) -> Built:
    """Build a model by config name through `open_clip.create_model_and_transforms`.

    Our configs start from the pretrained towers (assets) with fresh projections unless
    `pretrained_towers=False` (from scratch). Stock open_clip names take `pretrained`: a local file or
    one of open_clip's tags (downloaded by open_clip, only where the hub is reachable). `model_kwargs`
    override top-level config keys (e.g. `init_logit_bias` for SigLIP).
    """
    import open_clip

    cfg = model_config(name)
    init = TOWERS.get(name)
    if init is not None and pretrained_towers:
        _check_assets(name, cfg)
    if pretrained is not None and not (
        Path(pretrained).is_file() or pretrained in open_clip.list_pretrained_tags_by_model(name)
    ):
        raise FacevlmError(
            f"pretrained={pretrained!r}: neither a file nor one of open_clip's tags for {name} "
            f"({', '.join(open_clip.list_pretrained_tags_by_model(name)) or 'none'})"
        )
    try:
        with warnings.catch_warnings(), quiet_hf_loading():
            # open_clip 3.3 applies colour jitter / grayscale from aug_cfg, then wrongly warns they are unused
            warnings.filterwarnings("ignore", message="Unused augmentation cfg items")
            model, train_tf, val_tf = open_clip.create_model_and_transforms(
                name,
                pretrained=pretrained,
                device=device,
                precision=precision,
                pretrained_text=pretrained_towers and init is not None,
                image_mean=init.preprocess.get("mean") if init else None,
                image_std=init.preprocess.get("std") if init else None,
                aug_cfg=aug_cfg,
                **model_kwargs,
            )
    except RuntimeError as exc:
        raise FacevlmError(f"open_clip could not build {name!r}: {exc}") from None
    if init is not None and init.image_asset and pretrained_towers:
        _load_image_trunk(model, init)
    return Built(name, model, train_tf, val_tf, open_clip.get_tokenizer(name))


def list_models() -> list[str]:
    """Our names first, then every stock open_clip architecture."""
    register()
    import open_clip

    return list(TOWERS) + [m for m in open_clip.list_models() if m not in TOWERS]


@contextlib.contextmanager
def quiet_hf_loading() -> Iterator[None]:
    """transformers prints a load report on every build: MiniLM's pooler weights are unused, as expected
    (open_clip mean-pools the token states). Keep that table out of every CLI run; errors still show."""
    from transformers.utils import logging as hf_logging

    old = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(old)
