"""Scenes: everything that changes between two photos of the same synthetic person.

Pose, lighting, background, expression, accessories and camera noise are drawn per render from a
per-item seed. `FACTORS` lists what the one-factor-at-a-time mode can vary while holding the rest fixed;
`vary` applies one value of one factor to an (identity, scene) pair and nothing else.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from facevlm.data.synth.identity import FACIAL_HAIR, Identity
from facevlm.errors import FacevlmError
from facevlm.schema import EXPRESSIONS, GENDER_PRESENTATIONS, HAIR_COLORS, HAIR_LENGTHS, SKIN_TONES

EYEWEAR: tuple[str, ...] = ("none", "eyeglasses", "sunglasses")
BACKGROUNDS: tuple[str, ...] = ("gradient", "texture", "clutter", "room")
AGES: tuple[int, ...] = (16, 25, 35, 45, 55, 65, 78)  # one per age group the renderer can draw (10-19 ... 70+)


@dataclass(frozen=True)
class Scene:
    """One photo of an identity. Angles in degrees; light direction as azimuth/elevation."""

    yaw: float
    pitch: float
    roll: float
    light_az: float
    light_el: float
    ambient: float
    light_rgb: tuple[float, float, float]
    expression: str
    intensity: float
    eyewear: str
    frame_rgb: tuple[int, int, int]
    lens_round: float  # 0 = rectangular, 1 = round
    hat: bool
    hat_rgb: tuple[int, int, int]
    earrings: bool
    earring_rgb: tuple[int, int, int]
    necklace: bool
    lipstick: bool
    lipstick_rgb: tuple[int, int, int]
    heavy_makeup: bool
    background: str
    bg_seed: int
    clothing_rgb: tuple[int, int, int]
    dx: float  # head centre offset, fraction of the image
    dy: float
    scale: float
    noise: float
    blur: float
    seed: int  # texture noise, hair strands


def _rgb(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    return tuple(int(x) for x in rng.integers(lo, hi, 3))


def sample_scene(rng: np.random.Generator, identity: Identity) -> Scene:
    """Draw one photo's conditions. Pose and light are wide so that probes cannot key on them."""
    fem = not identity.masculine
    eyewear = str(rng.choice(EYEWEAR, p=[0.65, 0.25, 0.10]))
    makeup = bool(fem and rng.random() < 0.3)
    lipstick = bool(makeup or rng.random() < (0.35 if fem else 0.02))
    warm = rng.uniform(-0.08, 0.08)
    metal = [(212, 175, 55), (192, 192, 200), (180, 120, 90), (240, 240, 240)]
    return Scene(
        yaw=float(np.clip(rng.normal(0, 14), -35, 35)),
        pitch=float(np.clip(rng.normal(0, 8), -20, 20)),
        roll=float(np.clip(rng.normal(0, 6), -15, 15)),
        light_az=float(rng.uniform(-70, 70)),
        light_el=float(rng.uniform(-10, 55)),
        ambient=float(rng.uniform(0.3, 0.5)),
        light_rgb=(1 + warm, 1.0, 1 - warm),
        expression=str(rng.choice(EXPRESSIONS)),
        intensity=float(rng.uniform(0.85, 1.0)),
        eyewear=eyewear,
        frame_rgb=_rgb(rng, 0, 120) if rng.random() < 0.7 else _rgb(rng),
        lens_round=float(rng.random()),
        hat=bool(rng.random() < 0.12),
        hat_rgb=_rgb(rng, 20, 230),
        earrings=bool(rng.random() < (0.45 if fem else 0.06)),
        earring_rgb=metal[int(rng.integers(0, 4))],
        necklace=bool(rng.random() < (0.3 if fem else 0.08)),
        lipstick=lipstick,
        lipstick_rgb=(int(rng.integers(150, 215)), int(rng.integers(20, 60)), int(rng.integers(40, 80))),
        heavy_makeup=makeup,
        background=str(rng.choice(BACKGROUNDS)),
        bg_seed=int(rng.integers(0, 2**31)),
        clothing_rgb=_rgb(rng, 10, 240),
        dx=float(rng.uniform(-0.05, 0.05)),
        dy=float(rng.uniform(-0.04, 0.04)),
        scale=float(rng.uniform(0.9, 1.08)),
        noise=float(rng.uniform(1.0, 5.0)),
        blur=float(rng.choice([0.0, 0.0, 0.5, 0.9])),
        seed=int(rng.integers(0, 2**31)),
    )


# factor -> values; each value is applied by `vary`.
FACTORS: dict[str, tuple[str, ...]] = {
    "expression": EXPRESSIONS,
    "skin_tone": SKIN_TONES,
    "gender_presentation": GENDER_PRESENTATIONS,
    "hair_color": HAIR_COLORS,
    "hair_length": HAIR_LENGTHS,
    "eyewear": EYEWEAR,
    "facial_hair": FACIAL_HAIR,
    "age": tuple(str(a) for a in AGES),
    "hat": ("false", "true"),
    "lipstick": ("false", "true"),
}

_HAIR_BINARIES = ("hair_color", "Black_Hair", "Brown_Hair", "Blond_Hair", "Gray_Hair")
# factor -> the labels allowed to change when only that factor changes (used by tests and bias reports)
FACTOR_LABELS: dict[str, frozenset[str]] = {
    "expression": frozenset({"expression", "Smiling", "Mouth_Slightly_Open"}),
    "skin_tone": frozenset({"skin_tone", "Pale_Skin"}),
    "gender_presentation": frozenset({"gender_presentation", "Male", "Arched_Eyebrows", "Bushy_Eyebrows"}),
    "hair_color": frozenset(_HAIR_BINARIES),
    "hair_length": frozenset({"hair_length", "Bald", "Receding_Hairline", *_HAIR_BINARIES}),
    "eyewear": frozenset({"Eyeglasses", "sunglasses"}),
    "facial_hair": frozenset({"5_o_Clock_Shadow", "Mustache", "Goatee", "Sideburns", "No_Beard"}),
    "age": frozenset({"age", "age_group", "Young"}),
    "hat": frozenset({"Wearing_Hat"}),
    "lipstick": frozenset({"Wearing_Lipstick"}),
}


def vary(identity: Identity, scene: Scene, factor: str, value: str) -> tuple[Identity, Scene]:
    """(identity, scene) with exactly one factor set to `value`."""
    if factor not in FACTORS:
        raise FacevlmError(f"--one-factor: unknown factor {factor!r}; choose from {', '.join(FACTORS)}")
    if value not in FACTORS[factor]:
        raise FacevlmError(f"{factor}: {value!r} not one of {', '.join(FACTORS[factor])}")
    if factor in ("expression", "eyewear"):
        return identity, dataclasses.replace(scene, **{factor: value})
    if factor in ("hat", "lipstick"):
        return identity, dataclasses.replace(scene, **{factor: value == "true"})
    if factor == "age":
        return dataclasses.replace(identity, age=int(value)), scene
    if factor == "hair_length" and value == "bald":
        return dataclasses.replace(identity, hair_length=value, bangs=False), scene
    return dataclasses.replace(identity, **{factor: value}), scene


def probe_base(identity: Identity, scene: Scene, factor: str) -> tuple[Identity, Scene]:
    """Neutralise the settings that would make some values of `factor` ill-defined or hide its pixels:
    no hat or sunglasses over hair/eyes, no facial hair on a presentation flip, no bangs for hair length."""
    scene = dataclasses.replace(
        scene,
        hat=False if factor != "hat" else scene.hat,
        eyewear="none" if factor in ("eyewear", "expression") else scene.eyewear,
        lipstick=scene.lipstick and factor != "lipstick",
        heavy_makeup=scene.heavy_makeup and factor != "lipstick",
    )
    if factor == "gender_presentation":
        identity = dataclasses.replace(identity, facial_hair="none")
    if factor == "hair_length":
        identity = dataclasses.replace(identity, bangs=False)
    return identity, scene
