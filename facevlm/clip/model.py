"""`FaceCLIP`: one object holding an open_clip model with its preprocess and tokenizer, and `load()`.

The wrapper adds no layers: `FaceCLIP.model` is the open_clip model itself (what open_clip tools and
CLIP_benchmark use), so anything trained here can leave facevlm as a plain open_clip folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from facevlm import paths
from facevlm.clip import backends, checkpoint, inference
from facevlm.errors import FacevlmError


@dataclass
class FaceCLIP:
    """An open_clip model ready for inference. `source` says where it came from (folder, hub id, name).

    `backend` (facevlm.clip.backends: eager | channels_last | compile | onnx | bf16 | auto) is how image and
    text forwards run; text embeddings go through `text_cache`, keyed by this model's fingerprint, so a
    repeated query or prompt is a lookup. Forwards are serialised by one lock (concurrent forwards only
    fight over the same cores); cache hits never wait for it."""

    model: Any
    preprocess: Callable
    tokenizer: Callable
    model_cfg: dict[str, Any]
    source: str = ""
    train_transform: Callable | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    backend: str = "eager"
    text_cache: backends.TextCache = field(default_factory=lambda: backends.TEXT_CACHE, repr=False)
    calibration: Any = None  # facevlm.clip.calibration.Calibration from the folder's calibration.json
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        backends.check_backend(self.backend)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def embed_dim(self) -> int:
        return int(self.model_cfg["embed_dim"])

    @functools.cached_property
    def fingerprint(self) -> str:
        """Hash of the text tower's weights (taken once: a model trained in place needs a new FaceCLIP)."""
        h = hashlib.blake2b(digest_size=16)
        h.update(self.source.encode())
        for name, value in self.model.state_dict().items():
            if name.startswith(("text", "token_embedding", "positional_embedding", "ln_final", "transformer")):
                h.update(name.encode())
                h.update(value.detach().float().cpu().numpy().tobytes())
        return h.hexdigest()

    def to(self, device: str | torch.device) -> FaceCLIP:
        self.model.to(device)
        return self

    def encode_images(self, images: Iterable[Any], batch_size: int = 32) -> torch.Tensor:
        """Normalised [N, D] embeddings of PIL images or image paths, through `backend`."""
        with self._lock:
            return inference.encode_images(self.model, self.preprocess, images, batch_size, self.backend)

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Normalised [N, D] embeddings of texts; cached texts are looked up, the others encoded once."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        fp = self.fingerprint + ("|bf16" if self.backend == "bf16" else "")  # the one backend not within 1e-6
        rows = self.text_cache.get_many(fp, texts)
        missing = list(dict.fromkeys(t for t, r in zip(texts, rows) if r is None))
        if missing:
            with self._lock:
                new = inference.encode_texts(self.model, self.tokenizer, missing, batch_size, self.backend)
            self.text_cache.put_many(fp, missing, new)
            found = dict(zip(missing, new))
            rows = [found[t] if r is None else r for t, r in zip(texts, rows)]
        return torch.stack(rows) if rows else torch.empty(0, self.embed_dim)

    def zero_shot_head(self, attribute: str, **kwargs: Any) -> inference.ZeroShotHead:
        """`inference.zero_shot_head` with its prompts embedded through the text cache, carrying the
        model's calibration of `attribute` (fitted for these prompts) so `predict` decides with it."""
        head = inference.zero_shot_head(self.model, self.tokenizer, attribute, embed=self._ensemble, **kwargs)
        if self.calibration is not None:
            from facevlm.clip.calibration import prompts_sha

            head.calibration = self.calibration.get(attribute, prompts_sha(attribute, head.negative_weight))
        return head

    def _ensemble(self, prompts: Sequence[str]) -> torch.Tensor:
        return F.normalize(self.encode_texts(prompts).mean(0), dim=-1)

    def classify(self, images: Iterable[Any], attribute: str, **kwargs: Any) -> tuple[list[str], torch.Tensor]:
        """Zero-shot value of `attribute` for each image, with the probabilities over values (calibrated
        ones, and "uncertain" for every image of an attribute the calibration found unreliable)."""
        head = self.zero_shot_head(attribute, **kwargs)
        return head.predict(self.encode_images(images))

    def search(self, query: str | torch.Tensor, gallery: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k gallery rows for a text query (or an embedding)."""
        q = self.encode_texts([query]) if isinstance(query, str) else query
        return inference.topk(q, gallery, k)

    def save(self, out_dir: str | Path) -> Path:
        """An open_clip-loadable folder (see facevlm.clip.checkpoint), with its calibration."""
        out = checkpoint.save_model(self.model, self.tokenizer, self.model_cfg, out_dir, meta=self.meta)
        if self.calibration is not None:
            self.calibration.save(out)
        return out


def load(
    path_or_id: str | Path = "facevlm-clip-small",
    pretrained: str | None = None,
    *,
    device: str = "cpu",
    precision: str = "fp32",
    backend: str | None = None,
    text_cache: backends.TextCache | None = None,
) -> FaceCLIP:
    """Load a FaceCLIP from any of:

    - a saved folder (ours or any open_clip `open_clip_config.json` folder), or `local-dir:<folder>`;
    - `hf-hub:org/repo` (downloaded by open_clip; needs the hub);
    - a model name: the trained checkpoint under `$FACEVLM_HOME/models/<name>` if `make models` made
      one, else the architecture built from its pretrained towers with fresh projections
      (`pretrained` = an open_clip tag or weights file for stock names such as ViT-B-16).

    `backend` is how image and text forwards run (facevlm.clip.backends; default `backends.default_backend()`:
    `auto`, i.e. ONNX Runtime on CPU, falling back to compiled / eager with a log line); `text_cache`
    defaults to the process-wide one.
    """
    backend = backends.check_backend(backend or backends.default_backend())
    extra = {"backend": backend, "text_cache": backends.TEXT_CACHE if text_cache is None else text_cache}
    ref = str(path_or_id)
    if ref.startswith("local-dir:"):
        ref = ref[len("local-dir:") :]
    if ref.startswith("hf-hub:"):
        import open_clip

        try:
            model, train_tf, val_tf = open_clip.create_model_and_transforms(ref, device=device, precision=precision)
        except Exception as exc:  # hub errors come in many types; all mean "cannot fetch this id"
            raise FacevlmError(f"{ref}: open_clip could not load it ({exc})") from None
        return FaceCLIP(
            model, val_tf, open_clip.get_tokenizer(ref), open_clip.get_model_config(ref) or {}, ref, train_tf, **extra
        )
    folder = Path(ref).expanduser()
    if not folder.exists() and "/" not in ref and pretrained is None:
        cached = paths.models_dir() / ref
        folder = cached if checkpoint.is_model_dir(cached) else folder
    if folder.is_dir():
        if not checkpoint.is_model_dir(folder):
            raise FacevlmError(f"{folder}: no {checkpoint.CONFIG_FILE}; not a FaceCLIP/open_clip folder")
        model, train_tf, val_tf, tok, cfg = checkpoint.load_model(folder, device, precision)
        meta_file = folder / checkpoint.META_FILE
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        calibration = checkpoint.read_calibration(folder)
        return FaceCLIP(model, val_tf, tok, cfg, str(folder), train_tf, meta, calibration=calibration, **extra)
    if folder.exists() or "/" in ref:
        raise FacevlmError(f"{ref}: no such FaceCLIP folder (a folder with {checkpoint.CONFIG_FILE})")
    from facevlm.clip import factory

    built = factory.create(ref, pretrained, device=device, precision=precision)
    cfg = factory.model_config(ref)
    if ref.startswith("facevlm-clip") and pretrained is None:
        # Not an error (baselines and tests want it), but never silent: its projections are random.
        logging.getLogger("facevlm").warning(
            "%s: no trained checkpoint under %s; using pretrained towers with UNTRAINED projections "
            "(run `make models`)",
            ref,
            paths.models_dir() / ref,
        )
    meta = {"trained": False, "note": f"built from config {ref}: pretrained towers (if any), fresh projections"}
    return FaceCLIP(built.model, built.preprocess, built.tokenizer, cfg, ref, built.train_transform, meta, **extra)
