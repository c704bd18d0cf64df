"""Deterministic stand-ins for benchmarks and tests of the gallery machinery: distinct small images
(for ingest paths that need real bytes) and galleries of random unit vectors (for latency and recall,
where only the vectors matter). Nothing here pretends to be a face for a face model.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from facevlm.index.store import FaceEntry, Gallery


def pattern_image(seed: int, size: int = 96) -> Image.Image:
    """A seeded picture (background + ellipses + rectangle): distinct content hash per seed."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = (int(v) for v in rng.integers(0, size // 2, 2))
        w, h = (int(v) for v in rng.integers(8, size // 2, 2))
        x1, y1 = x0 + w, y0 + h
        draw.ellipse((int(x0), int(y0), int(x1), int(y1)), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw.rectangle((0, 0, int(rng.integers(4, size)), 6), fill=(seed % 256, (seed // 256) % 256, 128))
    return img


def pattern_png(seed: int, size: int = 96) -> bytes:
    buf = io.BytesIO()
    pattern_image(seed, size).save(buf, format="PNG")
    return buf.getvalue()


def write_pattern_images(folder: Path, n: int, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        path = folder / f"img_{i:06d}.png"
        path.write_bytes(pattern_png(i))
        out.append(path)
    return out


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):  # bounded temporaries at 1M x 256
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        out[start:start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def fill_random(gallery: Gallery, n: int, seed: int = 0, batch: int = 1000) -> None:
    """Add `n` vector-only faces (no pixels) in batches of one transaction each; for latency benchmarks."""
    vecs = unit_vectors(n, gallery.dim, seed)
    for start in range(0, n, batch):
        gallery.add_faces([FaceEntry(v, source="random") for v in vecs[start:start + batch]])
    gallery.flush()


def save_tiny_model(folder: Path, seed: int = 0) -> str:
    """Save a seeded `facevlm-clip-tiny` (builds without assets) to `folder`, so every process of a test
    session or a benchmark loads the same weights; returns the folder for facevlm.clip.load."""
    import torch

    from facevlm.clip import load

    if not (folder / "open_clip_config.json").is_file():
        torch.manual_seed(seed)
        load("facevlm-clip-tiny").save(folder)
    return str(folder)
