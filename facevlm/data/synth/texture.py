"""The head texture: skin, facial features, wrinkles, facial hair, makeup and the hair on the scalp.

Outputs an albedo (what colour each texel is before lighting), a height map (relief that bends the
normals: nose, brow ridge, cheeks, lips, sockets) and a specular weight (skin and lips shine, hair less).
Everything is drawn in face units with `FaceCanvas`, so pose never enters this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facevlm.data.synth.canvas import TEX_H, TEX_W, FaceCanvas, blend, bump, darken, ellipse
from facevlm.data.synth.expressions import Shape, draw_brows, draw_eyes, draw_mouth, layout
from facevlm.data.synth.identity import Identity
from facevlm.data.synth.scene import Scene


@dataclass
class Texture:
    albedo: np.ndarray  # (TEX_H, TEX_W, 3) float32, 0-255
    height: np.ndarray  # (TEX_H, TEX_W) float32, px of relief at render scale
    spec: np.ndarray  # (TEX_H, TEX_W) float32, 0-1


def _lowfreq(rng: np.random.Generator, cells: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Smooth noise in [-1, 1]: random cells upsampled with a cubic filter."""
    small = rng.uniform(-1, 1, cells).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def strands(rng: np.random.Generator, shape: tuple[int, int], wavy: bool, along_x: bool = False) -> np.ndarray:
    """Hair-strand shading in about [0.7, 1.3]: noise stretched along the strands."""
    h, w = shape
    cols = rng.uniform(-1, 1, (max(h // 16, 2), w)).astype(np.float32)
    field = cv2.resize(cols, (w, h), interpolation=cv2.INTER_LINEAR)
    if wavy:
        ys = np.arange(h, dtype=np.float32)[:, None]
        shift = (3 * np.sin(ys / 9.0)).astype(np.float32) + np.arange(w, dtype=np.float32)[None, :]
        field = cv2.remap(
            field, shift, np.broadcast_to(ys, (h, w)).astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP
        )
    field = field * 0.22 + rng.standard_normal(shape, dtype=np.float32) * 0.06
    return 1 + field


def _hair_cap(cv: FaceCanvas, ident: Identity, brow_y: float) -> np.ndarray:
    """Coverage (0-1) of scalp hair over the texture: above the hairline at the front, down the sides
    and back according to hair length, plus bangs."""
    if ident.hair_length == "bald":
        return np.zeros((TEX_H, TEX_W), np.float32)
    u, v = cv.u, cv.v
    front = -0.62 + ident.hairline / cv.ab + 0.10 * u**2 + 0.05 * np.abs(u - ident.parting * 0.5)
    side_drop = {"short": 0.05, "medium": 0.35, "long": 0.55}[ident.hair_length]
    side = np.clip((np.abs(u) - 1.05) / 0.35, 0, 1)  # 0 on the face, 1 behind the ears
    line = front * (1 - side) + side_drop * side
    if ident.bangs:
        edge = (brow_y - 0.07) / cv.ab + 0.015 * np.sin(u * 40 + ident.parting * 9)
        fringe = np.clip((1.15 - np.abs(u)) / 0.2, 0, 1)
        line = np.maximum(line, edge * fringe + line * (1 - fringe))
    cover = np.clip((line - v) * 60, 0, 1)
    return cv2.GaussianBlur(cover, (0, 0), 0.8)


def facial_hair(cv: FaceCanvas, ident: Identity, mouth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Coverage (0-1) of beard, moustache, goatee or stubble."""
    style = ident.facial_hair
    lay = layout(ident)
    m = cv.mask()
    chin = cv.ab * 0.98
    if style in ("moustache", "full"):
        lx, ly = mouth[0]
        rx, ry = mouth[1]
        top = lay.nose_y + 0.07
        cv.fill(
            m,
            np.array(
                [
                    [lx - 0.04, ly + 0.02],
                    [-0.1, top],
                    [0.1, top],
                    [rx + 0.04, ry + 0.02],
                    [rx - 0.02, ry - 0.02],
                    [0, (ly + ry) / 2 - 0.06],
                    [lx + 0.02, ly - 0.02],
                ]
            ),
        )
    if style in ("goatee", "full"):
        w = 0.2 if style == "goatee" else 0.95
        low = lay.mouth_y + 0.07
        pts = [
            [-w, low - (0.25 if style == "full" else 0)],
            [w, low - (0.25 if style == "full" else 0)],
            [w * 0.7, chin - 0.05],
            [0, chin + 0.05],
            [-w * 0.7, chin - 0.05],
        ]
        cv.fill(m, np.array(pts))
        if style == "full":  # sideburns joining the beard
            for s in (-1, 1):
                cv.fill(
                    m,
                    np.array(
                        [
                            [s * 0.98, lay.eye_y + 0.05],
                            [s * 0.8, lay.eye_y + 0.1],
                            [s * 0.75, lay.mouth_y],
                            [s * 0.99, lay.mouth_y - 0.1],
                        ]
                    ),
                )
            lip = cv.fill(cv.mask(), ellipse(0, lay.mouth_y + 0.02, ident.mouth_width * 1.05, 0.06))
            m = np.maximum(m.astype(np.int16) - lip, 0).astype(np.uint8)
    if style == "stubble":
        cv.fill(
            m,
            np.array(
                [
                    [-0.97, lay.nose_y - 0.05],
                    [-0.5, lay.nose_y + 0.05],
                    [-0.15, lay.nose_y + 0.08],
                    [0.15, lay.nose_y + 0.08],
                    [0.5, lay.nose_y + 0.05],
                    [0.97, lay.nose_y - 0.05],
                    [0.7, chin - 0.05],
                    [0, chin + 0.08],
                    [-0.7, chin - 0.05],
                ]
            ),
        )
    cover = cv2.GaussianBlur(m.astype(np.float32) / 255, (0, 0), 2.0)
    grain = rng.random((TEX_H, TEX_W), dtype=np.float32)
    if style == "stubble":
        return cover * (grain > 0.45) * 0.55
    return cover * np.clip(0.65 + 0.5 * grain, 0, 1)


def build_texture(
    ident: Identity, scene: Scene, shape: Shape, mouth: np.ndarray, ab: float, rng: np.random.Generator
) -> Texture:
    cv = FaceCanvas(ab)
    lay = layout(ident)
    skin = ident.skin_rgb
    tex = np.empty((TEX_H, TEX_W, 3), np.float32)
    tex[:] = skin
    tex *= (1 + 0.05 * _lowfreq(rng, (6, 12), (TEX_H, TEX_W)))[..., None]
    height = np.zeros((TEX_H, TEX_W), np.float32)

    # nose: bridge, tip, wings, nostrils
    bridge = cv.line(cv.mask(), np.array([[0, lay.eye_y], [0, lay.nose_y - 0.05]]), 0.07)
    bump(height, bridge, 9.0 * ident.nose_height, 3.0)
    tip = cv.fill(cv.mask(), ellipse(0, lay.nose_y - 0.03, 0.07, 0.06))
    bump(height, tip, 14.0 * ident.nose_height, 3.0)
    nw = ident.nose_width
    for s in (-1, 1):
        wing = cv.fill(cv.mask(), ellipse(s * nw * 0.75, lay.nose_y - 0.01, nw * 0.45, 0.05))
        bump(height, wing, 5.0, 2.5)
        nostril = cv.fill(cv.mask(), ellipse(s * nw * 0.45, lay.nose_y + 0.025, nw * 0.28, 0.018, angle=s * 0.3))
        darken(tex, nostril, 0.35, 0.85, blur=0.8)
    blend(tex, tip, np.minimum(skin * (1.03, 0.94, 0.94), 255), 0.5, blur=3)
    if shape.wrinkle_nose > 0.3:
        for dy in (-0.03, 0.0, 0.03):
            ln = cv.line(cv.mask(), np.array([[-0.08, lay.eye_y + 0.12 + dy], [0.08, lay.eye_y + 0.12 + dy]]), 0.016)
            darken(tex, ln, 0.5, 0.9, blur=0.8)
        for s in (-1, 1):
            ln = cv.line(
                cv.mask(), np.array([[s * 0.05, lay.eye_y + 0.1], [s * (nw + 0.05), lay.nose_y - 0.06]]), 0.016
            )
            darken(tex, ln, 0.5, 0.8, blur=0.8)

    # cheeks (raised when smiling), blush, chin
    for s in (-1, 1):
        cheek = cv.fill(cv.mask(), ellipse(s * 0.48, lay.nose_y - 0.05 - 0.06 * shape.cheek, 0.2, 0.14))
        bump(height, cheek, 3.0 + 5.0 * shape.cheek, 6.0)
        if shape.cheek > 0.3:  # raised cheeks catch the light
            blend(tex, cheek, np.minimum(skin * 1.12, 255), 0.5 * shape.cheek, blur=5)
        if ident.rosy or scene.heavy_makeup:
            blend(tex, cheek, (206, 92, 96), 0.22 if ident.rosy else 0.3, blur=8)
    bump(height, cv.fill(cv.mask(), ellipse(0, cv.ab * 0.9, 0.22, 0.12)), 4.0, 6.0)

    # folds and wrinkles (age, smile, disgust)
    fold = max(shape.folds, ident.wrinkles * 0.8)
    if fold > 0.1:
        for s in (-1, 1):
            pts = np.array(
                [
                    [s * (nw + 0.05), lay.nose_y - 0.04],
                    [s * (nw + 0.12), lay.nose_y + 0.12],
                    [s * (ident.mouth_width + 0.06), lay.mouth_y + 0.04],
                ]
            )
            darken(tex, cv.line(cv.mask(), pts, 0.016), 0.68, 0.7 * fold, blur=1.2)
    if ident.wrinkles > 0.15:
        k = ident.wrinkles
        for i in range(3):
            y = lay.brow_y - 0.14 - 0.07 * i
            xs = np.linspace(-0.38, 0.38, 9)
            ys = y + 0.012 * np.sin(xs * 9 + i)
            darken(tex, cv.line(cv.mask(), np.stack([xs, ys], -1), 0.01), 0.7, 0.6 * k, blur=0.8)
        for s in (-1, 1):
            for d in (-0.04, 0.0, 0.04):
                x0 = s * (ident.eye_sep + 0.17)
                ln = cv.line(
                    cv.mask(), np.array([[x0, lay.eye_y + d * 0.5], [x0 + s * 0.09, lay.eye_y + d * 1.6]]), 0.009
                )
                darken(tex, ln, 0.7, 0.6 * k, blur=0.6)
            bag = cv.line(
                cv.mask(),
                np.stack(
                    [
                        s * ident.eye_sep + np.linspace(-0.12, 0.12, 7),
                        lay.eye_y + 0.1 + 0.02 * np.cos(np.linspace(-1.5, 1.5, 7)),
                    ],
                    -1,
                ),
                0.012,
            )
            darken(tex, bag, 0.72, 0.6 * k, blur=1.0)

    gaze = (float(rng.uniform(-0.02, 0.02)), float(rng.uniform(-0.01, 0.01)))
    draw_eyes(cv, tex, height, ident, shape, gaze, scene.heavy_makeup)
    brow_rgb = np.minimum(ident.hair_rgb * 0.7, skin * 0.45)  # brows stay darker than the skin
    draw_brows(cv, tex, height, ident, shape, brow_rgb)
    lip_rgb = np.array(scene.lipstick_rgb, np.float32) if scene.lipstick else skin * (0.8, 0.55, 0.55)
    draw_mouth(cv, tex, height, ident, shape, lip_rgb)

    spec = np.full((TEX_H, TEX_W), 0.12, np.float32)
    hair_rgb = ident.hair_rgb
    beard = facial_hair(cv, ident, mouth, rng) if ident.facial_hair != "none" else None
    if beard is not None:
        beard_rgb = hair_rgb * 0.8 if ident.hair_color != "blond" else hair_rgb * 0.7
        tex += (beard_rgb - tex) * beard[..., None]
        spec *= 1 - beard
    cap = _hair_cap(cv, ident, lay.brow_y)
    if cap.any():
        hair = strands(rng, (TEX_H, TEX_W), ident.wavy)[..., None] * hair_rgb
        root = np.clip((cv.v[..., None] + 1) * 0.6, 0.75, 1.0)  # darker near the crown parting
        tex += (np.clip(hair * root, 0, 255) - tex) * cap[..., None]
        spec = spec * (1 - cap) + 0.06 * cap
        height += cap * 2.0
    return Texture(tex, height, spec)
