"""Head geometry: a posed, jaw-tapered ellipsoid seen by an orthographic camera.

Why an ellipsoid and not a mesh: it is solvable in closed form per pixel (one quadratic), so every pixel
gets an exact surface point, a normal for lighting and a texture coordinate for the face features. Pose
(yaw/pitch/roll) then moves and foreshortens features exactly as on the surface, and landmarks are the
same surface points projected, so labels and pixels come from one source of truth.

Frames: view frame x right, y down, z towards the camera (pixels). Head frame: the same when the pose is
zero. Yaw + turns the nose towards image right (the subject's left); pitch + lifts the nose (image up);
roll + rotates the head clockwise in the image. Texture coordinates: u = atan2(x/a, z/c) in [-pi, pi]
(0 = front), v = y/b in [-1, 1] (-1 = crown, +1 = below the chin).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Head-to-view rotation (yaw about y, then pitch about x)."""
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    return ry @ rx


@dataclass
class Head:
    """A head placed in the image: centre (px), semi-axes a (half width), b (half height), c (depth), pose,
    and `jaw_taper` (0 = pure ellipse, larger = narrower jaw) applied below the cheekbones."""

    cx: float
    cy: float
    a: float
    b: float
    c: float
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    jaw_taper: float = 0.15

    def __post_init__(self) -> None:
        self.rot = rotation(self.yaw, self.pitch)
        self.cr, self.sr = math.cos(math.radians(self.roll)), math.sin(math.radians(self.roll))
        self.quad = self.rot @ np.diag([1 / self.a**2, 1 / self.b**2, 1 / self.c**2]) @ self.rot.T

    # --- taper: x is scaled by taper(y) in the pre-roll view plane ------------------------------------
    def _taper(self, y: np.ndarray | float) -> np.ndarray | float:
        s = np.clip((np.asarray(y) / self.b - 0.1) / 0.9, 0.0, 1.0) ** 1.5
        return 1.0 - self.jaw_taper * s

    def surface(self, u: np.ndarray, v: np.ndarray, lift: np.ndarray | float = 0.0) -> np.ndarray:
        """Head-frame points (N, 3) at texture coordinates (u, v), `lift` px out along the view axis."""
        u, v = np.asarray(u, float), np.clip(np.asarray(v, float), -1, 1)
        r = np.sqrt(1 - v**2)
        return np.stack([self.a * r * np.sin(u), self.b * v, self.c * r * np.cos(u) + lift], axis=-1)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image positions (N, 2) and view depths (N,) of head-frame points (N, 3)."""
        q = np.asarray(points, float) @ self.rot.T
        xr = q[:, 0] * self._taper(q[:, 1])
        yr = q[:, 1]
        x = self.cr * xr - self.sr * yr + self.cx
        y = self.sr * xr + self.cr * yr + self.cy
        return np.stack([x, y], axis=-1), q[:, 2]

    def facing(self, points: np.ndarray) -> np.ndarray:
        """View-frame z of the outward normal at head-frame surface points (> 0: visible side)."""
        p = np.asarray(points, float)
        n = p / np.array([self.a**2, self.b**2, self.c**2])
        n = n / np.linalg.norm(n, axis=-1, keepdims=True)
        return (n @ self.rot.T)[:, 2]

    def to_image_plane(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of the roll + taper: image pixels -> pre-taper view-plane coordinates."""
        dx, dy = xs - self.cx, ys - self.cy
        xr = self.cr * dx + self.sr * dy
        yr = -self.sr * dx + self.cr * dy
        return xr / self._taper(yr), yr

    def rasterise(self, height: int, width: int, x0: int = 0, y0: int = 0) -> dict[str, np.ndarray]:
        """Per-pixel surface of the head over the window [y0:y0+height, x0:x0+width]: coverage `alpha`,
        texture coordinates `u`, `v`, view-frame unit `normal` (H, W, 3)."""
        ys, xs = np.mgrid[y0 : y0 + height, x0 : x0 + width].astype(np.float32)
        xs += 0.5
        ys += 0.5
        x, y = self.to_image_plane(xs, ys)
        A = self.quad.tolist()  # python floats keep the per-pixel arithmetic in float32
        bq = A[0][2] * x + A[1][2] * y
        qq = A[0][0] * x * x + 2 * A[0][1] * x * y + A[1][1] * y * y
        fmin = qq - bq * bq / A[2][2]
        radius = 0.5 * (self.a + self.b)
        alpha = np.clip((1 - fmin) * radius * 0.5 + 0.5, 0, 1).astype(np.float32)
        disc = np.maximum(bq * bq - A[2][2] * (qq - 1), 0)
        z = (-bq + np.sqrt(disc)) / A[2][2]
        view = np.stack([x, y, z], axis=-1)
        head = view @ self.rot.astype(np.float32)  # rows: R^T q
        u = np.arctan2(head[..., 0] / self.a, head[..., 2] / self.c)
        v = np.clip(head[..., 1] / self.b, -1, 1)
        n = view @ self.quad.astype(np.float32)  # gradient of q^T A q (A symmetric)
        n[..., 0] /= self._taper(y)
        nx = self.cr * n[..., 0] - self.sr * n[..., 1]
        ny = self.sr * n[..., 0] + self.cr * n[..., 1]
        normal = np.stack([nx, ny, n[..., 2]], axis=-1)
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + 1e-9
        return {
            "alpha": alpha,
            "u": u.astype(np.float32),
            "v": v.astype(np.float32),
            "normal": normal.astype(np.float32),
        }
