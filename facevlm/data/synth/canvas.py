"""Drawing in face units on the head texture.

Features are specified in frontal face coordinates (x, y in units of the head half-width, origin at the
head centre, y down) and mapped exactly onto the ellipsoid's texture (see geometry.py), so one drawing
routine serves every pose. All polygons are drawn by OpenCV with anti-aliasing and 4 bits of sub-pixel
precision; colours are blended through soft masks so edges stay smooth after remapping.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

TEX_W, TEX_H = 384, 192
SHIFT = 4


def face_to_uv(ab: float, pts: np.ndarray) -> np.ndarray:
    """Face units (N, 2) -> texture coordinates (u, v) (N, 2) on a head with b / a = `ab`: the frontal
    orthographic projection inverted onto the ellipsoid (x = sqrt(1 - v^2) sin u, y = ab * v)."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    v = np.clip(pts[:, 1] / ab, -0.999, 0.999)
    u = np.arcsin(np.clip(pts[:, 0] / np.sqrt(1 - v**2), -1, 1))
    return np.stack([u, v], axis=-1)


class FaceCanvas:
    """Texture-space canvas for one head whose height/width ratio is `ab` (b / a)."""

    # texture coordinates of every texel (row vector u, column vector v; broadcast together)
    u = ((np.arange(TEX_W, dtype=np.float32) + 0.5) / TEX_W * 2 * math.pi - math.pi)[None, :]
    v = ((np.arange(TEX_H, dtype=np.float32) + 0.5) / TEX_H * 2 - 1)[:, None]

    def __init__(self, ab: float):
        self.ab = ab

    def to_tex(self, pts: np.ndarray) -> np.ndarray:
        """Face units (N, 2) -> texel coordinates (N, 2), float."""
        uv = face_to_uv(self.ab, pts)
        return np.stack([(uv[:, 0] / math.pi + 1) / 2 * TEX_W, (uv[:, 1] + 1) / 2 * TEX_H], axis=-1)

    def _fixed(self, pts: np.ndarray) -> np.ndarray:
        return np.round(self.to_tex(pts) * (1 << SHIFT)).astype(np.int32)

    def scale(self) -> float:
        """Texels per face unit (horizontal, at the face centre)."""
        return TEX_W / (2 * math.pi)

    def mask(self) -> np.ndarray:
        return np.zeros((TEX_H, TEX_W), np.uint8)

    def fill(self, mask: np.ndarray, pts: np.ndarray, value: int = 255) -> np.ndarray:
        cv2.fillPoly(mask, [self._fixed(pts)], value, cv2.LINE_AA, SHIFT)
        return mask

    def line(self, mask: np.ndarray, pts: np.ndarray, width: float, value: int = 255) -> np.ndarray:
        """Polyline of `width` face units."""
        thick = max(1, int(round(width * self.scale())))
        cv2.polylines(mask, [self._fixed(pts)], False, value, thick, cv2.LINE_AA, SHIFT)
        return mask


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24, angle: float = 0.0) -> np.ndarray:
    """Points of an ellipse in face units."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    ca, sa = math.cos(angle), math.sin(angle)
    return np.stack([cx + ca * x - sa * y, cy + sa * x + ca * y], axis=-1)


def _roi(mask: np.ndarray, pad: float) -> tuple[slice, slice] | None:
    """The mask's non-zero bounding box grown by `pad` texels (blending outside it is a no-op)."""
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0:
        return None
    p = int(math.ceil(pad * 3)) + 1
    return slice(max(y - p, 0), y + h + p), slice(max(x - p, 0), x + w + p)


def _weights(mask: np.ndarray, roi: tuple[slice, slice], opacity: float, blur: float) -> np.ndarray:
    m = mask[roi].astype(np.float32) * (opacity / 255.0)
    if blur > 0:
        m = cv2.GaussianBlur(m, (0, 0), blur)
    return m


def blend(img: np.ndarray, mask: np.ndarray, colour, opacity: float = 1.0, blur: float = 0.0) -> None:
    """img <- img * (1 - m) + colour * m, with m = mask/255 * opacity (optionally blurred); in place,
    only inside the mask's bounding box."""
    roi = _roi(mask, blur)
    if roi is None:
        return
    m = _weights(mask, roi, opacity, blur)[..., None]
    colour = np.asarray(colour, np.float32)
    if colour.ndim == 3:  # a per-pixel colour image (possibly broadcastable)
        colour = np.broadcast_to(colour, img.shape)[roi]
    win = img[roi]
    win *= 1 - m
    win += colour * m


def darken(img: np.ndarray, mask: np.ndarray, factor: float, opacity: float = 1.0, blur: float = 0.0) -> None:
    """Multiply img by `factor` under the mask (creases, wrinkles, shadows keep the local colour)."""
    roi = _roi(mask, blur)
    if roi is None:
        return
    m = _weights(mask, roi, opacity, blur)[..., None]
    img[roi] *= 1 - m * (1 - factor)


def bump(height: np.ndarray, mask: np.ndarray, amount: float, blur: float) -> None:
    """Add a smooth relief (positive = towards the camera) under `mask` to the height map; in place."""
    roi = _roi(mask, blur)
    if roi is None:
        return
    height[roi] += _weights(mask, roi, amount, blur)
