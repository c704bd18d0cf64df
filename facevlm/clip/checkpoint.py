"""FaceCLIP folders that open_clip itself loads, and the training state that makes runs resumable.

A model folder is what `open_clip.create_model_and_transforms("local-dir:/path")` expects (the layout
open_clip's `push_to_hf_hub` writes): `open_clip_config.json` ({"model_cfg", "preprocess_cfg"}) and
`open_clip_model.safetensors`. A HF text tower also needs its transformers config and tokenizer: they
are saved into the same folder, and `text_cfg.hf_model_name` / `hf_tokenizer_name` point at the folder's
absolute path, so plain open_clip needs nothing but the folder. If the folder is moved, open_clip's
tokenizer still works (for local-dir it always reads the folder) but the text tower's config path must
be rewritten; `facevlm.clip.load` does that on the fly, and `relocate()` rewrites the file for good.

Training checkpoints are model folders plus `train_state.pt` (optimizer, scaler, step, RNG states).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from facevlm.errors import FacevlmError

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
STATE_FILE = "train_state.pt"
META_FILE = "facevlm_clip.json"


def is_model_dir(path: str | Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def _with_text_path(model_cfg: dict[str, Any], folder: Path) -> dict[str, Any]:
    cfg = copy.deepcopy(model_cfg)
    text = cfg.get("text_cfg", {})
    if "hf_model_name" in text:
        text["hf_model_name"] = str(folder)
        text["hf_tokenizer_name"] = str(folder)
        text.pop("hf_model_pretrained", None)
    cfg.get("vision_cfg", {}).pop("timm_model_pretrained", None)
    cfg.pop("custom_text", None)
    return cfg


def save_model(
    model: Any, tokenizer: Any, model_cfg: dict[str, Any], out_dir: str | Path, meta: dict[str, Any] | None = None
) -> Path:
    """Write an open_clip-loadable folder (weights written last, via a temp file, so a crash mid-save
    never leaves a folder that looks complete)."""
    from safetensors.torch import save_file

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)  # DDP
    if "hf_model_name" in model_cfg.get("text_cfg", {}):
        model.text.config.save_pretrained(out)
        tokenizer.tokenizer.save_pretrained(out)
    preprocess = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
    config = {"model_cfg": _with_text_path(model_cfg, out), "preprocess_cfg": preprocess}
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=list))
    (out / META_FILE).write_text(json.dumps(meta or {}, indent=2, default=str))
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = out / f".{WEIGHTS_FILE}.tmp"
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, out / WEIGHTS_FILE)
    return out


def read_config(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CONFIG_FILE
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FacevlmError(f"{path}: not a readable open_clip config ({exc})") from None
    if "model_cfg" not in config:
        raise FacevlmError(f"{path}: missing 'model_cfg'")
    return config


def load_model(
    folder: str | Path, device: str = "cpu", precision: str = "fp32"
) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
    """(model, train_transform, preprocess, tokenizer, model_cfg) of a saved folder, through open_clip's
    local-dir loader; the HF text tower path is pointed at the folder wherever it now lives."""
    import open_clip

    folder = Path(folder).resolve()
    if not (folder / WEIGHTS_FILE).is_file():
        raise FacevlmError(f"{folder}: no {WEIGHTS_FILE} (an interrupted save, or not a FaceCLIP folder)")
    model_cfg = _with_text_path(read_config(folder)["model_cfg"], folder)
    overrides: dict[str, Any] = {}
    if "hf_model_name" in model_cfg.get("text_cfg", {}):
        overrides["text_cfg"] = {**model_cfg["text_cfg"], "hf_model_pretrained": False}
    from facevlm.clip.factory import quiet_hf_loading

    with quiet_hf_loading():
        model, train_tf, val_tf = open_clip.create_model_and_transforms(
            f"local-dir:{folder}", device=device, precision=precision, **overrides
        )
    tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    return model, train_tf, val_tf, tokenizer, model_cfg


def read_calibration(folder: str | Path) -> Any:
    """The folder's `calibration.json` (facevlm.clip.calibration.Calibration), None when it has none; one
    fitted for other weights comes back with every attribute unreliable."""
    from facevlm.clip import calibration

    return calibration.read(folder, Path(folder) / WEIGHTS_FILE)


def relocate(folder: str | Path) -> Path:
    """Rewrite a moved folder's text-tower paths so plain open_clip loads it again."""
    folder = Path(folder).resolve()
    config = read_config(folder)
    config["model_cfg"] = _with_text_path(config["model_cfg"], folder)
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    return folder


def _rng_state() -> dict[str, Any]:
    import random

    import numpy as np

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    folder: str | Path,
    *,
    model: Any,
    tokenizer: Any,
    model_cfg: dict[str, Any],
    optimizer: Any,
    scaler: Any,
    step: int,
    extra: dict[str, Any] | None = None,
) -> Path:
    """A model folder plus the training state at `step` (steps completed)."""
    folder = save_model(model, tokenizer, model_cfg, folder, meta={"step": step, **(extra or {})})
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "rng": _rng_state(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "extra": extra or {},
    }
    tmp = folder / f".{STATE_FILE}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, folder / STATE_FILE)
    return folder


def latest_checkpoint(path: str | Path) -> Path:
    """`path` itself if it is a checkpoint, else the newest complete one under `path/checkpoints`."""
    path = Path(path)
    if (path / STATE_FILE).is_file():
        return path
    found = sorted((path / "checkpoints").glob("step_*/" + STATE_FILE)) if path.is_dir() else []
    if not found:
        raise FacevlmError(f"--resume {path}: no checkpoint (expected {STATE_FILE} or checkpoints/step_*/)")
    return found[-1].parent


def load_checkpoint(folder: str | Path, *, model: Any, optimizer: Any, scaler: Any) -> dict[str, Any]:
    """Restore weights, optimizer, scaler and RNG from a checkpoint; returns its state dict."""
    from safetensors.torch import load_file

    folder = Path(folder)
    target = getattr(model, "module", model)
    target.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
    state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])
    return state


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Keep the newest `keep` checkpoints (0 keeps all)."""
    found = sorted((run_dir / "checkpoints").glob("step_*"))
    for old in found[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
