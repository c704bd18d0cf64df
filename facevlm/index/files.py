"""The image side of a gallery: original images (content-addressed, shared by their faces), face crops
and thumbnails, written durably *before* the SQLite row that references them is committed.

Write order is what makes crashes harmless: a file without a row is an orphan that start-up deletes; a
row never points at a missing file.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from PIL import Image

THUMB_SIZE = 128
CROP_SIZE = 224
DIRS = ("images", "crops", "thumbs")


def write_durable(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write to a temporary name, fsync, rename: a reader sees the whole file or none of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    import io

    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def new_token() -> str:
    """File stem for a face's crop and thumbnail: unique before the face id exists."""
    return uuid.uuid4().hex


def save_face_files(root: Path, crop: Image.Image, fsync: bool = True) -> tuple[str, str]:
    """Store a face crop (at most CROP_SIZE) and its thumbnail; returns their paths relative to root."""
    token = new_token()
    crop = crop.convert("RGB")
    big = crop.copy()
    big.thumbnail((CROP_SIZE, CROP_SIZE))
    small = crop.copy()
    small.thumbnail((THUMB_SIZE, THUMB_SIZE))
    rel_crop, rel_thumb = f"crops/{token[:2]}/{token}.jpg", f"thumbs/{token[:2]}/{token}.jpg"
    write_durable(root / rel_crop, jpeg_bytes(big), fsync)
    write_durable(root / rel_thumb, jpeg_bytes(small, quality=85), fsync)
    return rel_crop, rel_thumb


def save_original(root: Path, sha256: str, data: bytes, ext: str, fsync: bool = True) -> str:
    rel = f"images/{sha256[:2]}/{sha256}.{ext}"
    if not (root / rel).is_file():
        write_durable(root / rel, data, fsync)
    return rel


def remove_files(root: Path, rels: list[str]) -> None:
    for rel in rels:
        if rel:
            (root / rel).unlink(missing_ok=True)


def stored_files(root: Path) -> set[str]:
    """Every file under the image directories, relative to root (temporary files included)."""
    found: set[str] = set()
    for name in DIRS:
        base = root / name
        if base.is_dir():
            found.update(p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file())
    return found
