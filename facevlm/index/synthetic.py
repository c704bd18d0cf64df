"""Galleries of random unit vectors for the latency and recall benchmarks, where only the vectors matter.
Nothing here pretends to be a face for a face model (test images and tiny models are in tests/fakes.py).
"""

from __future__ import annotations

import numpy as np

from facevlm.index.store import FaceEntry, Gallery


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):  # bounded temporaries at 1M x 256
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def fill_random(gallery: Gallery, n: int, seed: int = 0, batch: int = 1000) -> None:
    """Add `n` vector-only faces (no pixels) in batches of one transaction each; for latency benchmarks."""
    vecs = unit_vectors(n, gallery.dim, seed)
    for start in range(0, n, batch):
        gallery.add_faces([FaceEntry(v, source="random") for v in vecs[start : start + batch]])
    gallery.flush()
