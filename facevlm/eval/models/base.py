"""What the tasks need from a model, and the helpers every torch plug-in shares.

A plug-in is an `EmbeddingModel` (image embeddings; text embeddings if it has a text tower; optional
direct attribute scores for experts) or a `ChatModel` (answers a question about an image). Tasks ask
only for these methods, so a new model family is one small file in this folder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ModelSpec:
    """One `models:` entry of a suite. `kind` picks the plug-in; the other keys are its options."""

    name: str
    kind: str
    model: str = ""  # architecture / model name (open_clip name, HF path or id, chat model name)
    pretrained: str | None = None  # weights file, asset name, open_clip tag, or hub id
    config: dict[str, Any] | str | None = None  # open_clip model config (dict or JSON path) to register
    url: str | None = None  # chat: OpenAI-compatible base URL; None = in-process
    api_key_env: str = "OPENAI_API_KEY"
    seed: int = 0  # random init of untrained parts (random baseline, reset projections)
    reset_projections: bool = False  # "same towers, untrained projections" baseline
    batch_size: int = 32
    max_new_tokens: int = 32
    options: dict[str, Any] = field(default_factory=dict)


class EmbeddingModel:
    """Base class: subclasses set `name`, `pretrained`, `has_text` and implement `_encode_*`."""

    name: str = ""
    pretrained: str = ""
    has_text: bool = True
    batch_size: int = 32

    def fingerprint(self) -> str:
        raise NotImplementedError

    def _encode_images(self, images: Sequence[Any]) -> np.ndarray:
        raise NotImplementedError

    def _encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def encode_images(self, images: Sequence[Any], progress: bool = False) -> np.ndarray:
        """L2-normalised float32 embeddings, computed in batches."""
        return _batched(self._encode_images, images, self.batch_size, progress, f"{self.name} images")

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not self.has_text:
            raise NotImplementedError(f"model {self.name} has no text tower")
        return _batched(self._encode_texts, list(texts), 256, False, "")

    def attribute_scores(self, images: Sequence[Any], attribute: str) -> np.ndarray | None:
        """Experts override this to score an attribute directly; None = use text prompts."""
        return None


class ChatModel:
    """A chat model: `answer` returns the reply and the number of generated tokens."""

    name: str = ""
    pretrained: str = ""

    def fingerprint(self) -> str:
        raise NotImplementedError

    def answer(self, image: Any, question: str) -> tuple[str, int]:
        raise NotImplementedError


def l2n(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _batched(
    fn: Callable[[Sequence[Any]], np.ndarray], items: Sequence[Any], batch: int, progress: bool, desc: str
) -> np.ndarray:
    from tqdm import tqdm

    chunks = []
    starts = range(0, len(items), batch)
    for s in tqdm(starts, desc=desc, disable=not progress, leave=False):
        chunks.append(l2n(fn([items[i] for i in range(s, min(s + batch, len(items)))])))
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(chunks)


def torch_fingerprint(module: Any, extra: str = "") -> str:
    """sha256 of every parameter and buffer (names, shapes, bytes): two models share a fingerprint
    only if they compute the same function, so the embedding cache can never serve stale vectors."""
    import torch

    h = hashlib.sha256(extra.encode())
    with torch.no_grad():
        for name, t in sorted(module.state_dict().items()):
            h.update(name.encode())
            h.update(str(tuple(t.shape)).encode())
            h.update(
                t.detach().cpu().contiguous().float().numpy().tobytes()
                if t.is_floating_point()
                else t.detach().cpu().contiguous().numpy().tobytes()
            )
    return h.hexdigest()[:16]
