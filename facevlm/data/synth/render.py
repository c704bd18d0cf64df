"""Render one (identity, scene) pair into an image with its exact face box and 5 landmarks.

Layers, back to front: background, shoulders, hair behind the head, neck, ears, the head (texture
remapped onto the posed ellipsoid, lit per pixel from the scene's light with a relief-perturbed normal),
then hat, earrings, necklace and glasses. The image is drawn at twice the output size and reduced with
area averaging (anti-aliasing), then camera blur and sensor noise are added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from facevlm.data.synth import accessories
from facevlm.data.synth.background import background
from facevlm.data.synth.canvas import TEX_H, TEX_W, face_to_uv
from facevlm.data.synth.expressions import Shape, layout, mouth_corners, shape_for
from facevlm.data.synth.geometry import Head
from facevlm.data.synth.identity import Identity
from facevlm.data.synth.scene import Scene
from facevlm.data.synth.texture import build_texture, strands

SUPERSAMPLE = 2


@dataclass
class Rendered:
    image: np.ndarray  # (S, S, 3) uint8 RGB
    box: list[float]  # face box [x0, y0, x1, y1], output pixels
    landmarks: list[list[float]]  # eyes, nose tip, mouth corners (image-left first), output pixels
    shape: Shape  # the expression actions actually drawn
    drawn: dict[str, bool]  # accessories actually visible
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # output-size coverage (0-1) per layer


def light_dir(scene: Scene) -> np.ndarray:
    az, el = math.radians(scene.light_az), math.radians(scene.light_el)
    return np.array([math.sin(az) * math.cos(el), -math.sin(el), math.cos(az) * math.cos(el)], np.float32)


def place_head(ident: Identity, scene: Scene, n: int) -> Head:
    a = 0.235 * n * scene.scale * ident.width_scale
    return Head(
        cx=n * (0.5 + scene.dx),
        cy=n * (0.45 + scene.dy),
        a=a,
        b=a * ident.face_len,
        c=a * 1.05,
        yaw=scene.yaw,
        pitch=scene.pitch,
        roll=scene.roll,
        jaw_taper=ident.jaw_taper,
    )


def _surface_of(head: Head, ab: float, pts: np.ndarray, lift: float = 0.0) -> np.ndarray:
    uv = face_to_uv(ab, pts)
    return head.surface(uv[:, 0], uv[:, 1], lift)


def _behind_hair(img: np.ndarray, head: Head, ident: Identity, rng: np.random.Generator, light: np.ndarray) -> None:
    """Hair volume outside the scalp: a silhouette around the crown, down to the jaw or the shoulders."""
    if ident.hair_length == "bald":
        return
    n = img.shape[0]
    down = {"short": 0.25, "medium": 1.15, "long": 2.2}[ident.hair_length]
    widen = {"short": 1.06, "medium": 1.16, "long": 1.22}[ident.hair_length]
    t = np.linspace(math.pi, 2 * math.pi, 25)
    top = np.stack([head.a * widen * np.cos(t), head.b * 1.05 * np.sin(t) - 0.05 * head.b], -1)
    sides = np.array([[head.a * widen * 1.02, head.b * down], [-head.a * widen * 1.02, head.b * down]])
    pts = np.concatenate([top, sides])
    cr, sr = math.cos(math.radians(head.roll)), math.sin(math.radians(head.roll))
    shift = np.array([head.a * 0.35 * math.sin(math.radians(head.yaw)), 0])
    pts = pts + shift
    pts = np.stack([cr * pts[:, 0] - sr * pts[:, 1] + head.cx, sr * pts[:, 0] + cr * pts[:, 1] + head.cy], -1)
    mask = np.zeros((n, n), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0:
        return
    hair = strands(rng, (h, w), ident.wavy)[..., None] * ident.hair_rgb * (0.62 + 0.2 * max(light[2], 0))
    accessories.paint(img[y : y + h, x : x + w], mask[y : y + h, x : x + w], np.clip(hair, 0, 255), 1.0)


def _body(img: np.ndarray, head: Head, ident: Identity, scene: Scene, light: np.ndarray) -> dict[str, np.ndarray]:
    """Shoulders in clothing, the neck, and the base of the neck where a necklace hangs."""
    n = img.shape[0]
    a, b = head.a, head.b
    base_y = head.cy + 1.55 * b
    cx = head.cx + 0.1 * a * math.sin(math.radians(head.yaw))
    shoulders = np.array(
        [
            [cx - 2.4 * a, n + 5],
            [cx - 2.2 * a, base_y + 0.5 * a],
            [cx - 1.2 * a, base_y - 0.05 * a],
            [cx, base_y + 0.1 * a],
            [cx + 1.2 * a, base_y - 0.05 * a],
            [cx + 2.2 * a, base_y + 0.5 * a],
            [cx + 2.4 * a, n + 5],
        ]
    )
    mask = np.zeros((n, n), np.uint8)
    cv2.fillPoly(mask, [np.round(shoulders * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    xs = np.arange(n, dtype=np.float32)[None, :, None]
    cloth = np.array(scene.clothing_rgb, np.float32) * (0.75 + 0.25 * light[0] * (xs - cx) / (2 * a))
    accessories.paint(img, mask, np.clip(cloth, 0, 255), 1.0)
    half = (0.52 if ident.masculine else 0.44) * a
    neck = np.array(
        [
            [cx - half, head.cy + 0.3 * b],
            [cx + half, head.cy + 0.3 * b],
            [cx + half * 1.1, base_y + 0.15 * a],
            [cx - half * 1.1, base_y + 0.15 * a],
        ]
    )
    nmask = np.zeros((n, n), np.uint8)
    cv2.fillPoly(nmask, [np.round(neck * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    ys = np.arange(n, dtype=np.float32)[:, None, None]
    under_jaw = np.clip((ys - head.cy - 0.95 * b) / (0.4 * b), 0, 1)
    tone = ident.skin_rgb * (0.45 + 0.35 * under_jaw) * (0.9 + 0.1 * light[0] * np.sign(xs - cx))
    accessories.paint(img, nmask, np.clip(tone, 0, 255), 1.0)
    return {"neck": nmask, "necklace_at": np.array([cx, base_y - 0.35 * a]), "neck_half": np.array(half * 1.05)}


def _ears(img: np.ndarray, head: Head, ident: Identity, light: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ears (skin, shaded) behind the head silhouette; returns the ear-lobe points for earrings."""
    lay = layout(ident)
    y_mid = 0.5 * (lay.eye_y + lay.nose_y) * head.a
    lobes = np.array([[s * head.a * 0.97, y_mid + 0.2 * head.a, -0.05 * head.c] for s in (-1, 1)])
    mask = np.zeros(img.shape[:2], np.uint8)
    if ident.hair_length in ("medium", "long"):
        return lobes, mask
    centres = np.array([[s * head.a * 1.0, y_mid, -0.08 * head.c] for s in (-1, 1)])
    pos, _ = head.project(centres)
    for p, s in zip(pos, (-1, 1)):
        cv2.ellipse(
            mask,
            tuple(np.round(p * 16).astype(int)),
            (int(0.13 * head.a * 16), int(0.25 * head.a * 16)),
            head.roll + s * 8,
            0,
            360,
            255,
            -1,
            cv2.LINE_AA,
            4,
        )
    accessories.paint(img, mask, ident.skin_rgb * (0.65 + 0.25 * max(light[2], 0)), 1.0)
    return lobes, mask


def _shade_head(img: np.ndarray, head: Head, tex, light: np.ndarray, scene: Scene) -> np.ndarray:
    """Remap the texture onto the visible head surface and light it; returns the head coverage."""
    n = img.shape[0]
    r = int(max(head.a, head.b, head.c) * 1.15)
    x0, y0 = max(int(head.cx) - r, 0), max(int(head.cy) - r, 0)
    x1, y1 = min(int(head.cx) + r, n), min(int(head.cy) + r, n)
    surf = head.rasterise(y1 - y0, x1 - x0, x0, y0)
    mx = ((surf["u"] / math.pi + 1) * 0.5 * TEX_W - 0.5).astype(np.float32)
    my = ((surf["v"] + 1) * 0.5 * TEX_H - 0.5).astype(np.float32)
    packed = np.dstack([tex.albedo, tex.spec * 255])
    sampled = cv2.remap(packed, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    relief = cv2.remap(tex.height, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    relief *= head.a / 80.0
    gx = cv2.Sobel(relief, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(relief, cv2.CV_32F, 0, 1, ksize=3) / 8
    nrm = surf["normal"]
    nrm = np.dstack([nrm[..., 0] - gx * nrm[..., 2], nrm[..., 1] - gy * nrm[..., 2], nrm[..., 2]])
    nrm /= np.linalg.norm(nrm, axis=-1, keepdims=True) + 1e-6
    ndl = nrm @ light
    diffuse = np.clip((ndl + 0.2) / 1.2, 0, 1)
    half = light + np.array([0, 0, 1], np.float32)
    half /= np.linalg.norm(half)
    spec = np.clip(nrm @ half, 0, 1) ** 24 * sampled[..., 3] / 255 * 255
    lit = sampled[..., :3] * (scene.ambient + (1.15 - scene.ambient) * diffuse)[..., None]
    lit = (lit + spec[..., None]) * np.array(scene.light_rgb, np.float32)
    alpha = surf["alpha"][..., None]
    window = img[y0:y1, x0:x1]
    window *= 1 - alpha
    window += lit * alpha
    cover = np.zeros((n, n), np.float32)
    cover[y0:y1, x0:x1] = surf["alpha"]
    return cover


def _face_box(head: Head, ident: Identity, ab: float) -> np.ndarray:
    """Box of the visible face region (brows to chin, cheek to cheek), render pixels."""
    lay = layout(ident)
    xs = np.linspace(-0.98, 0.98, 15)
    ys = np.linspace(lay.brow_y - 0.12, ab * 0.97, 15)
    gx, gy = np.meshgrid(xs, ys)
    keep = (gx**2 + (gy / ab) ** 2) <= 1.0
    pts = _surface_of(head, ab, np.stack([gx[keep], gy[keep]], -1))
    pts = pts[head.facing(pts) > 0.02]
    xy = head.project(pts)[0]
    return np.concatenate([xy.min(0), xy.max(0)])


def render(ident: Identity, scene: Scene, size: int = 160, keep_masks: bool = False) -> Rendered:
    """Draw one face. Deterministic in (ident, scene, size)."""
    n = size * SUPERSAMPLE
    rng = np.random.default_rng(scene.seed)
    head = place_head(ident, scene, n)
    ab = ident.face_len
    shape = shape_for(scene.expression, scene.intensity)
    corners = mouth_corners(ident, shape)
    light = light_dir(scene)
    lay = layout(ident)

    img = background(scene.background, scene.bg_seed, n)
    _behind_hair(img, head, ident, rng, light)
    body = _body(img, head, ident, scene, light)
    lobes, ear_mask = _ears(img, head, ident, light)
    tex = build_texture(ident, scene, shape, corners, ab, rng)
    masks: dict[str, np.ndarray] = {"head": _shade_head(img, head, tex, light, scene)}
    drawn = {"hat": False, "earrings": False, "necklace": False, "glasses": False}
    if scene.necklace:
        masks["necklace"] = accessories.necklace(
            img, body["necklace_at"], float(body["neck_half"]), 0.3 * head.a, scene.earring_rgb
        )
        drawn["necklace"] = True
    if scene.hat:
        brimmed = scene.hat_rgb[0] % 2 == 0
        masks["hat"] = accessories.hat(img, head, scene.hat_rgb, brimmed, -0.48 + ident.hairline * 0.3, light)
        drawn["hat"] = True
    if scene.earrings:
        masks["earrings"] = accessories.earrings(img, head, lobes, scene.earring_rgb)
        drawn["earrings"] = bool(masks["earrings"].any())
    eyes = _surface_of(head, ab, np.array([[-ident.eye_sep, lay.eye_y], [ident.eye_sep, lay.eye_y]]))
    if scene.eyewear != "none":
        masks["glasses"] = accessories.glasses(img, head, eyes, scene.eyewear, scene.frame_rgb, scene.lens_round, light)
        drawn["glasses"] = True

    out = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    if scene.blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), scene.blur)
    out += rng.standard_normal(out.shape, dtype=np.float32) * np.float32(scene.noise)
    image = np.clip(out + 0.5, 0, 255).astype(np.uint8)

    nose = _surface_of(head, ab, np.array([[0.0, lay.nose_y - 0.03]]), lift=0.14 * head.a * ident.nose_height)
    mouth = _surface_of(head, ab, corners)
    points = head.project(np.concatenate([eyes, nose, mouth]))[0] / SUPERSAMPLE
    box = np.clip(_face_box(head, ident, ab) / SUPERSAMPLE, 0, size)
    small = {}
    if keep_masks:
        masks["ears"] = ear_mask
        masks["neck"] = body["neck"]
        small = {
            k: cv2.resize(
                v.astype(np.float32) / (1.0 if k == "head" else 255.0), (size, size), interpolation=cv2.INTER_AREA
            )
            for k, v in masks.items()
        }
    return Rendered(image, [float(v) for v in box], [[float(x), float(y)] for x, y in points], shape, drawn, small)
