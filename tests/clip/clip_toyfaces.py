"""Tiny face-caption data drawn with PIL: cartoon faces whose glasses, smile and hair colour are
visible in the pixels and named in the captions, so a tiny CLIP has something real to learn."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

from facevlm.data.schema import FaceRecord

HAIR = {"black": (20, 20, 20), "blond": (230, 200, 90), "red": (190, 50, 30)}


def draw_face(glasses: bool, smiling: bool, hair: str, rng: random.Random, size: int = 96) -> Image.Image:
    bg = tuple(rng.randint(90, 200) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    j = lambda v: v + rng.randint(-3, 3)  # noqa: E731 - small jitter keeps images distinct
    d.ellipse((j(18), j(6), j(78), j(50)), fill=HAIR[hair])
    d.ellipse((j(22), j(16), j(74), j(88)), fill=(224, 180, 150))
    for x in (36, 60):
        d.ellipse((j(x) - 4, j(42) - 3, j(x) + 4, j(42) + 3), fill=(30, 30, 30))
        if glasses:
            d.rectangle((x - 9, 35, x + 9, 49), outline=(0, 0, 0), width=3)
    if glasses:
        d.line((45, 42, 51, 42), fill=(0, 0, 0), width=3)
    if smiling:
        d.arc((34, 56, 62, 78), 10, 170, fill=(150, 20, 20), width=4)
    else:
        d.line((38, 70, 58, 70), fill=(120, 40, 40), width=3)
    return img


def toy_records(n: int, seed: int = 0, split: str = "train") -> list[FaceRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        glasses, smiling, hair = rng.random() < 0.5, rng.random() < 0.5, rng.choice(list(HAIR))
        rec = FaceRecord(id=f"toy-{seed}-{i}", image=draw_face(glasses, smiling, hair, rng), source="toy",
                         licence="CC0", split=split, box=[10.0, 4.0, 86.0, 92.0])
        rec.set("Eyeglasses", glasses)
        rec.set("Smiling", smiling)
        rec.set("hair_color", hair)
        g = "wearing eyeglasses" if glasses else "without eyeglasses"
        s = "smiling" if smiling else "not smiling"
        rec.captions = [f"a person {g}, {s}, with {hair} hair.", f"a {s} face with {hair} hair, {g}.",
                        f"{hair} hair; {g}; {s}."]
        out.append(rec)
    return out


