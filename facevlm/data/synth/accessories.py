"""Accessories drawn in image space over (or, for ears, under) the shaded head.

Each accessory is built from head-frame 3D points projected by the head's pose, so glasses, hats and
earrings turn and foreshorten with the head. Each function returns the coverage mask it painted, which
the renderer keeps so tests can check that a label's pixels are where the label says.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from facevlm.data.synth.canvas import blend as paint
from facevlm.data.synth.geometry import Head

SHIFT = 4


def _poly(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts) * (1 << SHIFT)).astype(np.int32)


def _lens_ring(head: Head, centre: np.ndarray, rx: float, ry: float, roundness: float, n: int = 32) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    e = 2.0 / (2.0 + 3.0 * (1 - roundness))  # superellipse exponent: 1 round ... 0.4 rectangular
    x = rx * np.sign(np.cos(t)) * np.abs(np.cos(t)) ** e
    y = ry * np.sign(np.sin(t)) * np.abs(np.sin(t)) ** e
    pts = np.stack([centre[0] + x, centre[1] + y, np.full_like(x, centre[2])], -1)
    return head.project(pts)[0]


def glasses(
    img: np.ndarray, head: Head, eyes: np.ndarray, kind: str, frame_rgb, roundness: float, light: np.ndarray
) -> np.ndarray:
    """Eyeglasses (thin tinted lenses) or sunglasses (dark lenses) in front of the eyes (head frame)."""
    n = img.shape[0]
    cover = np.zeros(img.shape[:2], np.uint8)
    frame = np.zeros_like(cover)
    lift = 0.16 * head.a
    rx = 0.21 * head.a if kind == "eyeglasses" else 0.24 * head.a
    ry = (0.15 + 0.03 * roundness) * head.a
    width = max(2, int(round(0.03 * head.a)))
    rings = []
    for eye in eyes:
        centre = np.array([eye[0], eye[1] + 0.01 * head.a, eye[2] + lift])
        ring = _lens_ring(head, centre, rx, ry, roundness)
        rings.append(ring)
        lens = np.zeros_like(cover)
        cv2.fillPoly(lens, [_poly(ring)], 255, cv2.LINE_AA, SHIFT)
        if kind == "sunglasses":
            paint(img, lens, (18, 18, 22), 0.9)
            gy = np.linspace(0, 1, n, dtype=np.float32)[:, None, None]
            paint(img, lens, np.broadcast_to(np.array([60, 60, 70], np.float32) * (1 - gy), img.shape), 0.35)
        else:
            paint(img, lens, (225, 235, 240), 0.1)
        glint = np.zeros_like(cover)
        c = ring.mean(0)
        cv2.line(
            glint,
            tuple(_poly(c + [-rx * 0.5, -ry * 0.1])),
            tuple(_poly(c + [-rx * 0.1, -ry * 0.6])),
            255,
            max(1, width),
            cv2.LINE_AA,
            SHIFT,
        )
        paint(img, np.minimum(glint, lens), (255, 255, 255), 0.35 if kind == "sunglasses" else 0.18)
        cover = np.maximum(cover, lens)
        cv2.polylines(frame, [_poly(ring)], True, 255, width, cv2.LINE_AA, SHIFT)
    inner = [r[np.argmin(np.abs(r[:, 0] - rings[1 - i].mean(0)[0]))] for i, r in enumerate(rings)]
    cv2.line(frame, tuple(_poly(inner[0])), tuple(_poly(inner[1])), 255, width, cv2.LINE_AA, SHIFT)
    for i, eye in enumerate(eyes):  # temple arms towards the visible ears
        side = -1 if i == 0 else 1
        ear = np.array([[side * head.a * 0.98, eye[1], -0.05 * head.c]])
        if head.facing(ear)[0] > -0.2:
            outer = rings[i][np.argmax(side * (rings[i][:, 0] - rings[i].mean(0)[0]))]
            cv2.line(frame, tuple(_poly(outer)), tuple(_poly(head.project(ear)[0][0])), 255, width, cv2.LINE_AA, SHIFT)
    shade = 0.7 + 0.3 * max(light[2], 0)
    paint(img, frame, np.array(frame_rgb, np.float32) * shade, 1.0)
    return np.maximum(cover, frame)


def hat(img: np.ndarray, head: Head, rgb, brimmed: bool, band_v: float, light: np.ndarray) -> np.ndarray:
    """A beanie or a brimmed hat over the crown, down to `band_v` on the head."""
    u = np.linspace(-math.pi, math.pi, 48, endpoint=False)
    mask = np.zeros(img.shape[:2], np.uint8)
    if brimmed:
        ring = np.concatenate([head.surface(u, np.full_like(u, band_v + dv)) for dv in (0.0, 0.05)])
        ring[:, [0, 2]] *= 1.55
        hull = cv2.convexHull(head.project(ring)[0].astype(np.float32))
        cv2.fillPoly(mask, [_poly(hull[:, 0])], 255, cv2.LINE_AA, SHIFT)
    vv = np.linspace(-0.999, band_v, 10)
    uu, vg = np.meshgrid(u, vv)
    dome = head.surface(uu.ravel(), vg.ravel()) * 1.08
    hull = cv2.convexHull(head.project(dome)[0].astype(np.float32))
    cv2.fillPoly(mask, [_poly(hull[:, 0])], 255, cv2.LINE_AA, SHIFT)
    ramp = np.arange(img.shape[0], dtype=np.float32)
    grad = ((ramp[None, :] - head.cx) * light[0] + (ramp[:, None] - head.cy) * light[1]) / (1.4 * head.a)
    shade = np.clip(0.75 + 0.3 * grad, 0.35, 1.15)[..., None]
    paint(img, mask, np.asarray(rgb, np.float32) * shade, 1.0)
    return mask


def earrings(img: np.ndarray, head: Head, lobes: np.ndarray, rgb) -> np.ndarray:
    """Hoop or stud earrings at the visible ear lobes (head-frame points)."""
    mask = np.zeros(img.shape[:2], np.uint8)
    pos = head.project(lobes)[0]
    r = 0.07 * head.a
    for p, f in zip(pos, head.facing(lobes)):
        if f > -0.2:
            hoop = max(2, int(0.035 * head.a))
            cv2.circle(mask, tuple(_poly(p + [0, r])), int(r * (1 << SHIFT)), 255, hoop, cv2.LINE_AA, SHIFT)
            cv2.circle(mask, tuple(_poly(p)), int(0.03 * head.a * (1 << SHIFT)), 255, -1, cv2.LINE_AA, SHIFT)
    paint(img, mask, rgb, 1.0)
    return mask


def necklace(img: np.ndarray, centre: np.ndarray, half_w: float, drop: float, rgb) -> np.ndarray:
    """A chain with a pendant hanging across the neck base (image space)."""
    mask = np.zeros(img.shape[:2], np.uint8)
    t = np.linspace(-1, 1, 25)
    pts = np.stack([centre[0] + half_w * t, centre[1] + drop * (1 - t**2)], -1)
    cv2.polylines(mask, [_poly(pts)], False, 255, max(2, int(half_w * 0.06)), cv2.LINE_AA, SHIFT)
    pendant = tuple(_poly(pts[12] + [0, half_w * 0.08]))
    cv2.circle(mask, pendant, int(half_w * 0.1 * (1 << SHIFT)), 255, -1, cv2.LINE_AA, SHIFT)
    paint(img, mask, rgb, 1.0)
    return mask
