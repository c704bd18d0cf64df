"""The embedding model shared by ingest, search and the gateway: one FaceCLIP per process and name.

FaceCLIP (facevlm.clip) owns the model, its forward backend, the lock that serialises forwards and the
text-embedding cache; this wrapper only fixes what the index needs from it: float32 numpy arrays,
L2-normalised, a known dimension, a token count for OpenAI-style `usage`, and one load per process (the
gateway serves every request from the same weights).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np


class Embedder:
    """Text and image embeddings in FaceCLIP's joint space."""

    def __init__(self, model: str, clip: Any, batch_size: int = 32):
        self.model = model
        self.clip = clip
        self.batch_size = batch_size
        self.dim = int(self.texts(["a photo of a face"]).shape[1])

    def images(self, images: Sequence[Any]) -> np.ndarray:
        if not len(images):
            return np.zeros((0, self.dim), np.float32)
        return _as_numpy(self.clip.encode_images(list(images), batch_size=self.batch_size))

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, getattr(self, "dim", 0)), np.float32)
        return _as_numpy(self.clip.encode_texts(list(texts)))

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokens the text tower actually sees (before padding/truncation to its context length)."""
        tok = getattr(self.clip, "tokenizer", None)
        inner = getattr(tok, "tokenizer", None)  # open_clip's HFTokenizer wraps a transformers tokenizer
        total = 0
        for text in texts:
            if inner is not None and hasattr(inner, "encode"):
                total += len(inner.encode(text))
            elif tok is not None and hasattr(tok, "encode"):
                total += len(tok.encode(text))  # open_clip SimpleTokenizer
            else:
                total += len(text.split())
        return total


def _as_numpy(out: Any) -> np.ndarray:
    """FaceCLIP's embeddings (already L2-normalised by facevlm.clip.inference) as float32 numpy."""
    return out.detach().float().cpu().numpy()


@functools.lru_cache(maxsize=4)
def get_embedder(
    model: str, device: str = "cpu", backend: str | None = None, text_cache_size: int | None = None
) -> Embedder:
    """Load FaceCLIP `model` (a name, folder or hub id: facevlm.clip.load decides) once per process, its
    image forward through `backend` (facevlm.clip.backends) and, with `text_cache_size`, its own text
    cache of that many entries (default: the process-wide cache)."""
    from facevlm.clip import load
    from facevlm.clip.backends import TextCache

    cache = None if text_cache_size is None else TextCache(text_cache_size)
    return Embedder(model, load(model, device=device, backend=backend, text_cache=cache))
