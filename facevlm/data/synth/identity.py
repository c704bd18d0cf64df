"""Identities: the stable, seeded face of one synthetic person.

An identity fixes everything a person keeps from photo to photo (face shape, eye spacing, nose, mouth,
brows, skin, eye and hair colour, hair style, facial hair, apparent age and gender presentation); a
`Scene` (scene.py) holds what changes between photos. Presentation cues (jaw, brows, lashes, lips) are
derived from `gender_presentation` at render time so that a one-factor probe can flip only that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facevlm.schema import HAIR_LENGTHS, SKIN_TONES

# Albedo of each skin-tone level (1 lightest ... 6 darkest), sRGB 0-255, Fitzpatrick-like.
SKIN_RGB: dict[str, tuple[int, int, int]] = {
    "1": (246, 219, 200),
    "2": (232, 190, 160),
    "3": (210, 160, 122),
    "4": (176, 124, 86),
    "5": (130, 86, 58),
    "6": (84, 55, 40),
}
HAIR_RGB: dict[str, tuple[int, int, int]] = {
    "black": (28, 23, 21),
    "brown": (92, 60, 38),
    "blond": (206, 172, 112),
    "red": (150, 66, 32),
    "gray": (142, 140, 137),
    "white": (222, 220, 214),
}
EYE_RGB: tuple[tuple[int, int, int], ...] = (
    (58, 36, 24),
    (96, 60, 34),
    (110, 92, 50),
    (72, 110, 70),
    (70, 110, 160),
    (110, 124, 134),
)
FACIAL_HAIR: tuple[str, ...] = ("none", "stubble", "moustache", "goatee", "full")


@dataclass(frozen=True)
class Identity:
    """One synthetic person. Geometry is in units of the head half-width unless noted."""

    name: str
    gender_presentation: str  # "feminine" | "masculine"
    age: int
    skin_tone: str
    skin_jitter: tuple[float, float, float]
    face_len: float  # b / a
    jaw_base: float
    eye_sep: float
    eye_y: float
    eye_size: float
    eye_tilt: float
    eye_rgb: tuple[int, int, int]
    nose_len: float
    nose_width: float
    nose_height: float
    mouth_width: float
    lip_full: float
    brow_base: float  # base thickness
    brow_arch_base: float
    brow_gap: float
    hair_color: str
    hair_rgb_jitter: tuple[float, float, float]
    hair_length: str
    wavy: bool
    bangs: bool
    parting: float
    hairline: float
    facial_hair: str
    rosy: bool

    # --- presentation cues (derived, so flipping gender_presentation changes only these) ---------------
    @property
    def masculine(self) -> bool:
        return self.gender_presentation == "masculine"

    @property
    def jaw_taper(self) -> float:
        return self.jaw_base + (0.0 if self.masculine else 0.13)

    @property
    def brow_thick(self) -> float:
        return self.brow_base * (1.45 if self.masculine else 0.85)

    @property
    def brow_arch(self) -> float:
        return self.brow_arch_base + (0.0 if self.masculine else 0.05)

    @property
    def lash(self) -> float:
        return 0.0 if self.masculine else 1.0

    @property
    def maturity(self) -> float:
        """0 at 16 years, 1 at 76: eyes look smaller and lips thinner with age."""
        return float(np.clip((self.age - 16) / 60, 0, 1))

    @property
    def eye_scale(self) -> float:
        return self.eye_size * (1.08 - 0.14 * self.maturity)

    @property
    def lip_scale(self) -> float:
        return self.lip_full * (0.85 if self.masculine else 1.1) * (1.1 - 0.25 * self.maturity)

    @property
    def width_scale(self) -> float:
        return 1.04 if self.masculine else 0.97

    @property
    def skin_rgb(self) -> np.ndarray:
        base = np.array(SKIN_RGB[self.skin_tone], np.float32)
        return np.clip(base * (1 + np.array(self.skin_jitter, np.float32)), 0, 255)

    @property
    def hair_rgb(self) -> np.ndarray:
        base = np.array(HAIR_RGB[self.hair_color], np.float32)
        return np.clip(base * (1 + np.array(self.hair_rgb_jitter, np.float32)), 0, 255)

    @property
    def wrinkles(self) -> float:
        """0 below 28 years, rising to 1 at 78: drives forehead lines, crow's feet and folds."""
        return float(np.clip((self.age - 28) / 50, 0, 1))


def sample_identity(rng: np.random.Generator, name: str) -> Identity:
    """Draw one identity. Correlations (grey hair with age, baldness with masculine presentation and
    age) follow everyday photos; every value in the vocabulary stays reachable."""
    gp = "masculine" if rng.random() < 0.5 else "feminine"
    masc = gp == "masculine"
    age = int(rng.integers(14, 86))
    skin = str(rng.choice(SKIN_TONES))
    p_grey = float(np.clip((age - 38) / 40, 0.02, 0.85))
    if rng.random() < p_grey:
        hair = "white" if rng.random() < (age - 40) / 80 else "gray"
    else:
        dark = int(skin) >= 4
        weights = np.array([0.55, 0.35, 0.06, 0.04]) if dark else np.array([0.25, 0.38, 0.25, 0.12])
        hair = str(rng.choice(["black", "brown", "blond", "red"], p=weights))
    if masc:
        p_bald = 0.04 + 0.25 * float(np.clip((age - 30) / 40, 0, 1))
        lengths = np.array([p_bald, 0.72 * (1 - p_bald), 0.18 * (1 - p_bald), 0.10 * (1 - p_bald)])
    else:
        lengths = np.array([0.02, 0.20, 0.33, 0.45])
    hair_len = str(rng.choice(HAIR_LENGTHS, p=lengths / lengths.sum()))
    facial = str(rng.choice(FACIAL_HAIR, p=[0.45, 0.15, 0.12, 0.13, 0.15])) if masc and age >= 17 else "none"
    u = rng.uniform
    return Identity(
        name=name,
        gender_presentation=gp,
        age=age,
        skin_tone=skin,
        skin_jitter=tuple(float(x) for x in u(-0.05, 0.05, 3)),
        face_len=float(u(1.18, 1.38)),
        jaw_base=float(u(0.05, 0.2)),
        eye_sep=float(u(0.39, 0.47)),
        eye_y=float(u(-0.05, 0.06)),
        eye_size=float(u(0.85, 1.15)),
        eye_tilt=float(u(-0.04, 0.06)),
        eye_rgb=EYE_RGB[int(rng.integers(0, 2 if int(skin) >= 4 else len(EYE_RGB)))],
        nose_len=float(u(0.36, 0.48)),
        nose_width=float(u(0.11, 0.17)),
        nose_height=float(u(0.7, 1.3)),
        mouth_width=float(u(0.29, 0.38)),
        lip_full=float(u(0.8, 1.25)),
        brow_base=float(u(0.05, 0.07)),
        brow_arch_base=float(u(0.0, 0.06)),
        brow_gap=float(u(0.17, 0.24)),
        hair_color=hair,
        hair_rgb_jitter=tuple(float(x) for x in u(-0.08, 0.08, 3)),
        hair_length=hair_len,
        wavy=bool(rng.random() < 0.35),
        bangs=bool(hair_len != "bald" and rng.random() < 0.3),
        parting=float(u(-0.5, 0.5)),
        hairline=float(u(-0.05, 0.08) + (0.12 if masc and age > 45 else 0)),
        facial_hair=facial,
        rosy=bool(rng.random() < 0.2),
    )
