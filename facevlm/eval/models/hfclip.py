"""Hugging Face transformers CLIP / SigLIP (any model with get_image_features/get_text_features),
from a local folder, an asset name, or a hub id (offline: must already be in the HF cache)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from facevlm.errors import FacevlmError
from facevlm.eval.models.base import EmbeddingModel, ModelSpec, torch_fingerprint
from facevlm.image import open_image


def _features(out: Any) -> Any:
    # transformers 5 returns a ModelOutput whose pooler_output is the projected embedding;
    # older versions returned the tensor itself.
    return getattr(out, "pooler_output", None) if not hasattr(out, "float") else out


class HFClipModel(EmbeddingModel):
    def __init__(self, spec: ModelSpec):
        import torch
        from transformers import AutoModel, AutoProcessor

        from facevlm.assets import resolve

        source = str(resolve(spec.pretrained or spec.model))
        try:
            self.model = AutoModel.from_pretrained(source).eval()
            self.processor = AutoProcessor.from_pretrained(source)
        except (OSError, ValueError) as exc:
            raise FacevlmError(
                f"model {spec.name}: cannot load {source} with transformers: {str(exc).splitlines()[0]}"
            ) from None
        if not hasattr(self.model, "get_image_features"):
            raise FacevlmError(f"model {spec.name}: {type(self.model).__name__} has no get_image_features")
        self._torch = torch
        self.name, self.pretrained, self.batch_size = spec.name, source, spec.batch_size
        # SigLIP was trained with max_length padding; CLIP with dynamic padding.
        self._padding = "max_length" if "siglip" in type(self.model).__name__.lower() else True
        self._fp = torch_fingerprint(self.model, extra=source)
        text_cfg = getattr(self.model.config, "text_config", None)
        self._max_len = int(getattr(text_cfg, "max_position_embeddings", 64))

    def fingerprint(self) -> str:
        return self._fp

    def _encode_images(self, images: Sequence[Any]) -> np.ndarray:
        inputs = self.processor(images=[open_image(im) for im in images], return_tensors="pt")
        with self._torch.inference_mode():
            return _features(self.model.get_image_features(pixel_values=inputs["pixel_values"])).float().numpy()

    def _encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        inputs = self.processor(
            text=list(texts), return_tensors="pt", padding=self._padding, truncation=True, max_length=self._max_len
        )
        kwargs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
        with self._torch.inference_mode():
            return _features(self.model.get_text_features(**kwargs)).float().numpy()
