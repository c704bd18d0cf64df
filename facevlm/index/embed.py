"""The embedding model shared by ingest, search and the gateway: one FaceCLIP per process and name.

FaceCLIP (facevlm.clip) owns the model; this wrapper only fixes what the index needs from it: float32
numpy arrays, L2-normalised, a known dimension, a token count for OpenAI-style `usage`, and one load
per process (the gateway serves every request from the same weights).
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Sequence

import numpy as np

from facevlm.errors import FacevlmError


class Embedder:
    """Text and image embeddings in FaceCLIP's joint space."""

    def __init__(self, model: str, clip: Any, batch_size: int = 32):
        self.model = model
        self.clip = clip
        self.batch_size = batch_size
        self._lock = threading.Lock()  # torch modules are not re-entrant under concurrent requests
        self.dim = int(self.texts(["a photo of a face"]).shape[1])

    def images(self, images: Sequence[Any]) -> np.ndarray:
        if not len(images):
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            out = self.clip.encode_images(list(images), batch_size=self.batch_size)
        return _normalised(out)

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, getattr(self, "dim", 0)), np.float32)
        with self._lock:
            out = self.clip.encode_texts(list(texts))
        return _normalised(out)

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


def _normalised(out: Any) -> np.ndarray:
    if hasattr(out, "detach"):
        out = out.detach().float().cpu().numpy()
    arr = np.asarray(out, np.float32)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return arr / np.maximum(norms, 1e-12)


@functools.lru_cache(maxsize=4)
def get_embedder(model: str, device: str = "cpu") -> Embedder:
    """Load FaceCLIP `model` (a name, folder or hub id: facevlm.clip.load decides) once per process."""
    try:
        from facevlm.clip import load
    except ImportError as exc:
        raise FacevlmError(f"FaceCLIP is not available in this build ({exc})") from None
    try:
        clip = load(model, device=device)
    except TypeError:
        clip = load(model)
    return Embedder(model, clip)
