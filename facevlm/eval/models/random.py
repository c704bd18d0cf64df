"""The random baseline: embeddings drawn from a seeded RNG keyed by the content of each image or
text, so it is deterministic, cacheable, and scores exactly at chance: the floor every table needs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from facevlm.eval.models.base import EmbeddingModel, ModelSpec


def _key(item: Any) -> bytes:
    if isinstance(item, str):
        return item.encode()
    return np.asarray(item).tobytes() + str(getattr(item, "size", "")).encode()


class RandomModel(EmbeddingModel):
    def __init__(self, spec: ModelSpec):
        self.name, self.pretrained, self.batch_size = spec.name, f"seed{spec.seed}", spec.batch_size
        self.dim = int(spec.options.get("dim", 64))
        self.seed = spec.seed

    def fingerprint(self) -> str:
        return f"random-{self.dim}-{self.seed}"

    def _vec(self, item: Any) -> np.ndarray:
        digest = hashlib.sha256(_key(item) + str(self.seed).encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little")).standard_normal(self.dim)

    def _encode_images(self, images: Sequence[Any]) -> np.ndarray:
        return np.stack([self._vec(im) for im in images])

    def _encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts])
