"""The seven expressions as facial-action shapes, and the eyes, brows and mouth that show them.

Each expression is a small set of action parameters loosely following FACS (corner lift ~ AU12,
lip corner depressor ~ AU15, inner/outer brow raise ~ AU1/AU2, brow lowerer ~ AU4, upper lid raise ~ AU5,
cheek raise ~ AU6, nose wrinkle ~ AU9, upper lip raise ~ AU10, lip stretch ~ AU20, lip press ~ AU24,
jaw drop ~ AU26). Only the features change; identity, pose, light and background stay whatever the scene
says. `intensity` scales each action away from neutral.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facevlm.data.synth.canvas import FaceCanvas, blend, bump, darken, ellipse
from facevlm.data.synth.identity import Identity


@dataclass(frozen=True)
class Shape:
    corner_lift: float = 0.0  # mouth corners up (+) / down (-)
    mouth_w: float = 1.0
    open: float = 0.0  # lip gap, face units
    round: float = 0.0  # 1 = O-shaped opening
    upper_raise: float = 0.0  # upper lip raised on one side (disgust)
    asym: float = 0.0
    press: float = 1.0  # lip thickness factor (< 1: pressed)
    teeth: bool = False
    brow_inner: float = 0.0  # inner brow ends up (+)
    brow_outer: float = 0.0
    brow_in: float = 0.0  # inner ends drawn together
    eye_open: float = 1.0
    lower_lid: float = 0.0  # lower lid raised
    cheek: float = 0.0
    wrinkle_nose: float = 0.0
    folds: float = 0.0
    forehead: float = 0.0  # horizontal forehead lines from raised brows (0.6: central only, 1: full width)
    brow_bunch: float = 1.0  # lowered brows bunch up and look thicker
    chin_boss: float = 0.0  # chin raiser (AU17): wrinkled chin below a pushed-up lower lip


SHAPES: dict[str, Shape] = {
    "neutral": Shape(),
    "happy": Shape(
        corner_lift=0.17, mouth_w=1.3, open=0.12, teeth=True, eye_open=0.75, lower_lid=0.55, cheek=1.0, folds=1.0
    ),
    "sad": Shape(
        corner_lift=-0.13,
        mouth_w=0.9,
        press=0.85,
        brow_inner=0.15,
        brow_outer=-0.06,
        brow_in=0.04,
        eye_open=0.65,
        forehead=0.6,
        chin_boss=1.0,
    ),
    "surprise": Shape(
        open=0.32, round=1.0, mouth_w=0.6, brow_inner=0.18, brow_outer=0.17, eye_open=1.65, lower_lid=-0.2, forehead=1.0
    ),
    "anger": Shape(
        corner_lift=-0.04,
        mouth_w=0.8,
        press=0.25,
        brow_inner=-0.2,
        brow_outer=0.04,
        brow_in=0.1,
        eye_open=0.6,
        lower_lid=0.35,
        brow_bunch=1.7,
        chin_boss=1.0,
    ),
    "disgust": Shape(
        corner_lift=-0.07,
        upper_raise=0.16,
        asym=0.07,
        open=0.08,
        teeth=True,
        brow_inner=-0.04,
        brow_in=0.03,
        eye_open=0.7,
        lower_lid=0.5,
        wrinkle_nose=1.0,
        folds=1.0,
    ),
    "fear": Shape(
        corner_lift=-0.05,
        mouth_w=1.32,
        open=0.16,
        teeth=True,
        brow_inner=0.16,
        brow_outer=0.0,
        brow_in=0.07,
        eye_open=1.6,
        lower_lid=0.1,
        forehead=0.6,
    ),
}


def shape_for(expression: str, intensity: float) -> Shape:
    """The action parameters of `expression` at `intensity` (0 = neutral, 1 = full)."""
    full, base = SHAPES[expression], SHAPES["neutral"]
    mix = {
        f: getattr(base, f) + intensity * (getattr(full, f) - getattr(base, f))
        for f in Shape.__dataclass_fields__
        if f != "teeth"
    }
    return Shape(teeth=full.teeth, **mix)


def mouth_is_open(shape: Shape) -> bool:
    """The label rule for Mouth_Slightly_Open, shared with the drawing (a gap is drawn iff this holds)."""
    return shape.open + shape.upper_raise * 0.5 > 0.02


@dataclass(frozen=True)
class Layout:
    """Where the features of one identity sit (face units)."""

    eye_y: float
    brow_y: float
    nose_y: float
    mouth_y: float


def layout(ident: Identity) -> Layout:
    eye_y = ident.eye_y
    nose_y = eye_y + ident.nose_len
    return Layout(eye_y, eye_y - ident.brow_gap, nose_y, nose_y + 0.27)


def mouth_corners(ident: Identity, shape: Shape) -> np.ndarray:
    """The two mouth corners (face units), image-left first; also the 5-point landmarks."""
    lay = layout(ident)
    w = ident.mouth_width * shape.mouth_w
    return np.array(
        [[-w, lay.mouth_y - shape.corner_lift - shape.asym], [w, lay.mouth_y - shape.corner_lift + shape.asym]]
    )


def draw_mouth(
    cv: FaceCanvas, tex: np.ndarray, height: np.ndarray, ident: Identity, shape: Shape, lip_rgb: np.ndarray
) -> None:
    lay = layout(ident)
    w = ident.mouth_width * shape.mouth_w
    t = np.linspace(-1, 1, 41)
    x = w * t
    lift = np.where(t < 0, shape.corner_lift + shape.asym, shape.corner_lift - shape.asym)
    line = lay.mouth_y - lift * np.abs(t) ** 1.7
    profile = np.sqrt(np.clip(1 - t**2, 0, 1)) if shape.round > 0.5 else np.clip(1 - np.abs(t) ** 6, 0, 1)
    gap = (shape.open if mouth_is_open(shape) else 0.0) * profile
    raise_up = shape.upper_raise * np.exp(-(((t - 0.35) / 0.45) ** 2))
    upper_in = line - 0.5 * gap - raise_up
    lower_in = line + 0.5 * gap
    lip = ident.lip_scale * shape.press
    bow = 1 - 0.25 * np.exp(-((t / 0.12) ** 2))  # cupid's bow dip
    upper_out = upper_in - 0.05 * lip * np.sqrt(np.clip(1 - t**2, 0, 1)) ** 0.7 * bow - 0.008
    lower_out = lower_in + 0.065 * lip * np.sqrt(np.clip(1 - t**2, 0, 1)) ** 0.8 + 0.008
    lips = cv.fill(cv.mask(), np.concatenate([np.stack([x, upper_out], -1), np.stack([x, lower_out], -1)[::-1]]))
    blend(tex, lips, lip_rgb, 0.9, blur=1.0)
    bump(height, lips, 2.0, 3.0)
    if gap.max() > 0:
        inner = cv.fill(cv.mask(), np.concatenate([np.stack([x, upper_in], -1), np.stack([x, lower_in], -1)[::-1]]))
        blend(tex, inner, (52, 18, 22), 1.0)
        bump(height, inner, -3.0, 2.0)
        if shape.teeth:
            teeth_low = np.minimum(upper_in + 0.045, lower_in)
            teeth = cv.fill(
                cv.mask(), np.concatenate([np.stack([x * 0.9, upper_in], -1), np.stack([x * 0.9, teeth_low], -1)[::-1]])
            )
            teeth = np.minimum(teeth, inner)
            blend(tex, teeth, (232, 226, 212), 1.0)
    else:
        blend(tex, cv.line(cv.mask(), np.stack([x * 0.97, line], -1), 0.014), lip_rgb * 0.4, 0.9)
    if shape.chin_boss > 0.3:  # chin raiser: a bulge and dimpling under the lower lip
        chin_y = lower_out.max() + 0.09
        boss = cv.fill(cv.mask(), ellipse(0, chin_y, w * 0.55, 0.06))
        bump(height, boss, 4.0 * shape.chin_boss, 3.0)
        for dx in (-0.06, 0.0, 0.06):
            dimple = cv.fill(cv.mask(), ellipse(dx, chin_y + 0.01, 0.012, 0.02))
            darken(tex, dimple, 0.6, 0.8 * shape.chin_boss, blur=1.0)


def draw_eyes(
    cv: FaceCanvas,
    tex: np.ndarray,
    height: np.ndarray,
    ident: Identity,
    shape: Shape,
    gaze: tuple[float, float],
    makeup: bool,
) -> None:
    lay = layout(ident)
    s = ident.eye_scale
    half_w = 0.18 * s
    t = np.linspace(-1, 1, 25)
    for side in (-1, 1):
        cx = side * ident.eye_sep
        tilt = ident.eye_tilt * t * side
        up = 0.07 * s * shape.eye_open * (1 - t**2) ** 0.7
        down = 0.05 * s * (1 - max(shape.lower_lid, -0.4)) * (1 - t**2) ** 0.9
        x = cx + half_w * t
        upper = lay.eye_y - tilt - up
        lower = lay.eye_y - tilt + down
        socket = cv.fill(cv.mask(), ellipse(cx, lay.eye_y - 0.02, half_w * 1.35, 0.12 * s))
        bump(height, socket, -4.0, 5.0)
        darken(tex, socket, 0.82, 0.35, blur=4.0)
        if makeup:
            shadow = cv.fill(cv.mask(), ellipse(cx + side * 0.02, lay.eye_y - up.max() - 0.02, half_w * 1.15, 0.06))
            blend(tex, shadow, (96, 70, 110), 0.55, blur=3.0)
        almond = cv.fill(cv.mask(), np.concatenate([np.stack([x, upper], -1), np.stack([x, lower], -1)[::-1]]))
        blend(tex, almond, (236, 232, 226), 1.0)
        iris = np.minimum(cv.fill(cv.mask(), ellipse(cx + gaze[0], lay.eye_y + gaze[1], 0.078 * s, 0.078 * s)), almond)
        blend(tex, iris, ident.eye_rgb, 1.0)
        pupil = np.minimum(cv.fill(cv.mask(), ellipse(cx + gaze[0], lay.eye_y + gaze[1], 0.032 * s, 0.032 * s)), almond)
        blend(tex, pupil, (12, 10, 10), 1.0)
        glint = cv.fill(cv.mask(), ellipse(cx + gaze[0] - 0.02 * s, lay.eye_y + gaze[1] - 0.022 * s, 0.011, 0.011))
        blend(tex, np.minimum(glint, almond), (255, 255, 255), 0.9)
        lid_w = 0.014 + 0.012 * ident.lash + (0.012 if makeup else 0)
        blend(tex, cv.line(cv.mask(), np.stack([x, upper], -1), lid_w), (30, 22, 20), 0.9)
        darken(tex, cv.line(cv.mask(), np.stack([x[3:-3], lower[3:-3]], -1), 0.008), 0.6, 0.7)
        crease = np.stack([x * 0.95 + cx * 0.05, upper - 0.035 - 0.03 * (1 - t**2)], -1)
        darken(tex, cv.line(cv.mask(), crease[4:-4], 0.01), 0.7, 0.5, blur=0.8)
        if shape.lower_lid > 0.2:  # cheek-raised lower lid leaves a fold below the eye
            fold = np.stack([x[4:-4], lower[4:-4] + 0.03], -1)
            darken(tex, cv.line(cv.mask(), fold, 0.012), 0.72, 0.6, blur=1.0)


def draw_brows(
    cv: FaceCanvas, tex: np.ndarray, height: np.ndarray, ident: Identity, shape: Shape, brow_rgb: np.ndarray
) -> None:
    lay = layout(ident)
    t = np.linspace(0, 1, 21)  # 0 = inner end, 1 = outer end
    for side in (-1, 1):
        inner_x = side * (ident.eye_sep - 0.15 - shape.brow_in)
        outer_x = side * (ident.eye_sep + 0.19)
        x = inner_x + (outer_x - inner_x) * t
        arch = (ident.brow_arch + 0.02) * np.sin(np.pi * np.clip(t / 1.2, 0, 1)) * 1.6
        y = lay.brow_y - arch - shape.brow_inner * (1 - t) ** 1.3 - shape.brow_outer * t**1.3
        thick = ident.brow_thick * shape.brow_bunch * (1.2 - 0.7 * t)
        poly = np.concatenate([np.stack([x, y - thick * 0.5], -1), np.stack([x, y + thick * 0.5], -1)[::-1]])
        brow = cv.fill(cv.mask(), poly)
        blend(tex, brow, brow_rgb, 0.92, blur=0.6)
        bump(height, brow, 1.0, 3.0)
        if shape.brow_inner < -0.1:  # strongly lowered brows shade the upper lids
            lid = cv.fill(
                cv.mask(),
                np.concatenate([np.stack([x, y + thick * 0.5], -1), np.stack([x, y + thick * 0.5 + 0.07], -1)[::-1]]),
            )
            darken(tex, lid, 0.55, 0.8, blur=2.0)
    ridge = cv.fill(cv.mask(), ellipse(0, lay.brow_y + 0.02, ident.eye_sep + 0.2, 0.06))
    bump(height, ridge, 2.5, 6.0)
    if shape.brow_inner < -0.05:  # corrugator lines between lowered brows
        for dx in (-0.035, 0.035):
            ln = cv.line(cv.mask(), np.array([[dx, lay.brow_y - 0.1], [dx * 0.5, lay.brow_y + 0.06]]), 0.016)
            darken(tex, ln, 0.5, 0.9, blur=0.8)
    if shape.forehead > 0.3:  # raised brows fold the forehead
        half = 0.16 + 0.3 * (shape.forehead - 0.5)
        for i in range(3):
            xs = np.linspace(-half, half, 9)
            ys = lay.brow_y - 0.17 - 0.065 * i - shape.brow_inner * 0.5 + 0.015 * np.cos(xs * 6)
            darken(tex, cv.line(cv.mask(), np.stack([xs, ys], -1), 0.014), 0.6, 0.85, blur=0.8)
