"""Any open_clip model: a registered name + pretrained tag, a weights file, or a hub id; plus the
FaceCLIP checkpoints (which are open_clip models) and their untrained-projection baselines."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facevlm.errors import FacevlmError
from facevlm.eval.models.base import EmbeddingModel, ModelSpec, torch_fingerprint

# Parameters that map tower features into the shared space, across open_clip tower types
# (built-in CLIP towers, timm image towers, HF text towers).
PROJECTION_PATTERNS = (r"^visual\.proj$", r"^visual\.head\.proj\.", r"^text_projection$", r"^text\.proj\.")


def register_config(name: str, config: dict[str, Any] | str) -> None:
    """Make a custom architecture known to open_clip under `name` (dict or path to a JSON file)."""
    import open_clip

    if isinstance(config, str):
        path = Path(config)
        if not path.is_file():
            raise FacevlmError(f"open_clip config {config}: no such file")
        config = json.loads(path.read_text())
    tmp = Path(tempfile.mkdtemp(prefix="facevlm-occfg-")) / f"{name}.json"
    tmp.write_text(json.dumps(config))
    open_clip.add_model_config(tmp)


def reset_projections(model: Any, seed: int) -> list[str]:
    """Re-initialise the projection parameters (normal, std = in_dim^-0.5 as CLIP does; biases 0),
    keeping the towers: the "same towers, untrained projections" baseline that shows what training
    the shared space bought."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    names = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not any(re.search(pat, name) for pat in PROJECTION_PATTERNS):
                continue
            if p.ndim >= 2:
                std = p.shape[0] ** -0.5 if name in ("visual.proj", "text_projection") else p.shape[-1] ** -0.5
                p.copy_(torch.randn(p.shape, generator=gen) * std)
            else:
                p.zero_()
            names.append(name)
    if not names:
        raise FacevlmError(f"reset_projections: no projection parameters found in {type(model).__name__}")
    return names


class OpenClipModel(EmbeddingModel):
    """An open_clip model encoded by `facevlm.clip.inference`, the one FaceCLIP encoder: the harness
    scores exactly the embeddings FaceCLIP, the gallery and the gateway compute (same image opener,
    preprocessing, batching, normalisation)."""

    def __init__(
        self,
        model: Any,
        preprocess: Any,
        tokenizer: Any,
        name: str,
        pretrained: str,
        batch_size: int = 32,
        calibration: Any = None,
    ):
        self.model = model.eval()
        self.preprocess, self.tokenizer = preprocess, tokenizer
        self.name, self.pretrained, self.batch_size = name, pretrained, batch_size
        # facevlm.clip.calibration.Calibration: the zeroshot task then scores the calibrated decisions
        self.calibration = calibration
        self._fp = torch_fingerprint(self.model, extra=f"{name}|clip.inference")

    def fingerprint(self) -> str:
        return self._fp

    def encode_images(self, images: Sequence[Any], progress: bool = False) -> np.ndarray:
        from tqdm import tqdm

        from facevlm.clip.inference import encode_images

        items = tqdm(images, desc=f"{self.name} images", disable=not progress, leave=False)
        return encode_images(self.model, self.preprocess, items, self.batch_size).numpy()

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        from facevlm.clip.inference import encode_texts

        return encode_texts(self.model, self.tokenizer, list(texts)).numpy()


def load_open_clip(spec: ModelSpec) -> OpenClipModel:
    """`spec.model` is an open_clip architecture name (or `hf-hub:...`); `spec.pretrained` an
    open_clip tag, a weights file, an asset name or None (random init, seeded)."""
    import open_clip
    import torch

    if spec.config is not None:
        register_config(spec.model, spec.config)
    pretrained = spec.pretrained
    if (
        pretrained
        and not Path(pretrained).exists()
        and pretrained not in open_clip.list_pretrained_tags_by_model(spec.model)
    ):
        from facevlm.assets import resolve

        pretrained = str(resolve(pretrained))
    torch.manual_seed(spec.seed)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(spec.model, pretrained=pretrained or None)
        tokenizer = open_clip.get_tokenizer(spec.model)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        raise FacevlmError(
            f"model {spec.name}: open_clip could not load {spec.model} ({pretrained}): {str(exc).splitlines()[0]}"
        ) from None
    if spec.reset_projections:
        reset_projections(model, spec.seed)
    label = (pretrained or "random-init") + ("+reset-proj" if spec.reset_projections else "")
    return OpenClipModel(model, preprocess, tokenizer, spec.model, label, spec.batch_size)


def load_facevlm_clip(spec: ModelSpec) -> OpenClipModel:
    """A trained FaceCLIP (checkpoint folder, `$FACEVLM_HOME/models/<name>`, or hf-hub id) through
    facevlm.clip.load. With `reset_projections: true`, the same architecture built from its pretrained
    towers with fresh, seeded projections (facevlm.clip.create): the untrained baseline that isolates
    what contrastive training bought. A name with no trained checkpoint is an error, never silently
    the untrained model. `options: {calibrated: true}` scores the decisions of the model's
    calibration.json (`facevlm eval calibrate`); without it the raw threshold-0 decisions."""
    import torch

    from facevlm.clip import create, load

    ref = spec.pretrained or spec.model or "facevlm-clip-small"
    if spec.reset_projections:
        torch.manual_seed(spec.seed)
        built = create(spec.model or "facevlm-clip-small")
        return OpenClipModel(
            built.model,
            built.preprocess,
            built.tokenizer,
            spec.name,
            f"{built.name}:pretrained-towers+untrained-proj(seed={spec.seed})",
            spec.batch_size,
        )
    wrapper = load(ref)
    if not (Path(wrapper.source).is_dir() or wrapper.source.startswith("hf-hub:")):
        raise FacevlmError(
            f"model {spec.name}: no trained FaceCLIP checkpoint for {ref!r} (looked in "
            f"$FACEVLM_HOME/models/{ref}); train one with `facevlm finetune` or give a folder"
        )
    calibration = None
    if spec.options.get("calibrated"):
        calibration = wrapper.calibration
        if calibration is None:
            raise FacevlmError(
                f"model {spec.name}: {wrapper.source} has no calibration.json; "
                f"fit one with `facevlm eval calibrate {ref}`"
            )
    return OpenClipModel(
        wrapper.model,
        wrapper.preprocess,
        wrapper.tokenizer,
        spec.name,
        wrapper.source + (" (calibrated)" if calibration is not None else ""),
        spec.batch_size,
        calibration,
    )
