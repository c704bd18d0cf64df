"""Backgrounds: smooth gradients, noise textures, out-of-focus clutter and room-like walls.

Backgrounds vary independently of every label (their own seed), so a probe cannot learn a label from
the backdrop; clutter is blurred as a shallow depth of field would.
"""

from __future__ import annotations

import cv2
import numpy as np

from facevlm.errors import FacevlmError


def _gradient(rng: np.random.Generator, n: int) -> np.ndarray:
    c0, c1 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.arange(n, dtype=np.float32) / n - 0.5
    t = np.clip(0.5 + ramp[None, :] * np.float32(np.cos(angle)) + ramp[:, None] * np.float32(np.sin(angle)), 0, 1)
    return c0.astype(np.float32) + (c1 - c0).astype(np.float32) * t[..., None]


def _octaves(rng: np.random.Generator, n: int, cells: tuple[int, ...]) -> np.ndarray:
    out = np.zeros((n, n, 3), np.float32)
    for k, c in enumerate(cells):
        small = rng.uniform(-1, 1, (c, c, 3)).astype(np.float32)
        out += cv2.resize(small, (n, n), interpolation=cv2.INTER_CUBIC) / (k + 1)
    return out


def background(kind: str, seed: int, n: int) -> np.ndarray:
    """An n x n RGB float32 background (0-255) of `kind`, fully determined by `seed`."""
    rng = np.random.default_rng(seed)
    if kind == "gradient":
        img = _gradient(rng, n)
    elif kind == "texture":
        img = _gradient(rng, n) + _octaves(rng, n, (3, 7, 17)) * rng.uniform(15, 45)
    elif kind == "clutter":
        img = _gradient(rng, n)
        for _ in range(int(rng.integers(12, 30))):
            colour = tuple(float(x) for x in rng.uniform(0, 255, 3))
            x, y = (int(v) for v in rng.integers(0, n, 2))
            s = int(rng.integers(n // 20, n // 4))
            pick = rng.random()
            if pick < 0.4:
                cv2.rectangle(img, (x, y), (x + s, y + int(s * rng.uniform(0.3, 2))), colour, -1, cv2.LINE_AA)
            elif pick < 0.75:
                cv2.circle(img, (x, y), s // 2, colour, -1, cv2.LINE_AA)
            else:
                x2, y2 = (int(v) for v in rng.integers(0, n, 2))
                cv2.line(img, (x, y), (x2, y2), colour, max(1, s // 6), cv2.LINE_AA)
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1.0, 4.0))
    elif kind == "room":
        wall = rng.uniform(60, 225, 3)
        ys = np.linspace(0, 1, n, dtype=np.float32)[:, None, None]
        img = np.broadcast_to(wall * (1.05 - 0.3 * ys), (n, n, 3)).astype(np.float32).copy()
        for _ in range(int(rng.integers(1, 4))):  # door/window frames and shelves
            x0 = int(rng.integers(0, n))
            w = int(rng.integers(n // 12, n // 3))
            colour = tuple(float(v) for v in rng.uniform(30, 250, 3))
            cv2.rectangle(img, (x0, int(rng.integers(0, n // 3))), (x0 + w, n), colour, -1)
        y0 = int(rng.integers(n // 2, n))
        shelf = tuple(float(v) for v in rng.uniform(20, 120, 3))
        cv2.rectangle(img, (0, y0), (n, y0 + int(rng.integers(2, n // 25 + 3))), shelf, -1)
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1.5, 3.5))
    else:
        raise FacevlmError(f"unknown background kind {kind!r}")
    return np.clip(img, 0, 255).astype(np.float32)
