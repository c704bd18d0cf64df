"""Records of multi-face photos for the photo-level QA tests (faces by position, face-free images):
several records sharing one picture and `image_key`, with boxes in a known left-to-right order, random
labels (fakes.random_record) plus confident Smiling/Eyeglasses on every face, so "which person ...?"
questions have something to ask; and single-face photos with room beside the face."""

from __future__ import annotations

import random

from fakes import pattern_image, random_record

from facevlm.schema import FaceRecord

SIZE = (480, 240)  # photo (w, h): faces along the top, a face-free strip below
FACE_W = 60


def photo(seed: int):
    return pattern_image(seed, SIZE[1]).resize(SIZE)


def group(key: str, xs: list[float], seed: int = 0, splits: list[str] | None = None, n_faces: int | None = None):
    """One photo with a face at each x (left edge; boxes FACE_W wide, y 20-90), records in the given order."""
    rng = random.Random(f"{key}/{seed}")
    image = photo(seed)
    out = []
    for j, x in enumerate(xs):
        r = random_record(rng, 0, p_label=0.6)
        r.id, r.image, r.image_key = f"{key}#{j}", image, key
        r.box = [float(x), 20.0, float(x + FACE_W), 90.0]
        r.n_faces = n_faces or len(xs)
        r.split = splits[j] if splits else "train"
        r.identity = f"{key}-p{j}"
        r.set("Smiling", rng.random() < 0.5)
        r.set("Eyeglasses", rng.random() < 0.5)
        out.append(r)
    return out


def single(key: str, seed: int = 0) -> FaceRecord:
    """A one-face photo with the face at the left: a face-free square fits on the right."""
    (r,) = group(key, [20.0], seed)
    return r


def photo_set(n: int = 6) -> list[FaceRecord]:
    """n photos each of 2, 3 (given out of order) and 4 faces, and n single-face photos."""
    records: list[FaceRecord] = []
    for i in range(n):
        records += group(f"two{i}", [60, 300], seed=i)
        records += group(f"three{i}", [330, 40, 190], seed=100 + i)
        records += group(f"four{i}", [20, 130, 240, 350], seed=200 + i)
        records.append(single(f"one{i}", seed=300 + i))
    return records
