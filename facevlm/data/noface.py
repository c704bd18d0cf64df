"""Face-free images for "no face visible" QA samples: real pixels of the record's own domain, no face.

A model that must say "I can't see a face in this image" needs images without a face that look like the
images with one, or it learns the tell instead of the face. Erasing the face from its photo leaves a
hole, so two other sources are used, named by an image ref that the exporter resolves:

- `bg:<record id>`: synthetic records get the renderer's own background (facevlm/data/synth/background.py,
  the record's background kind) drawn at the record's size with its supersampling, camera blur and sensor
  noise, but no person; seeded from the record id, so the same record always gets the same picture.
- `nofacecrop:<x0>,<y0>,<x1>,<y1>:<record id>`: other records get a square crop of their own photo that
  stays clear of every face box of that photo (photos.face_free_box), when the photo has such a region.
  Unlabelled faces (too small to label, or dropped by the detector) could still be inside, so the
  exporter runs the shipped face detector on each crop and drops samples where it finds one.

`noface_ref` decides which (or none) at sampling time from boxes and sizes only, without pixels.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from facevlm.data.photos import PhotoFace, face_free_box
from facevlm.schema import FaceRecord

BG = "bg:"  # ref: the synthetic renderer's background of a record, no person in it
CROP = "nofacecrop:"  # ref: a face-free square of a record's photo, box first


def is_synthetic(record: FaceRecord) -> bool:
    """A record drawn by the synthetic renderer (its meta names the background kind it was drawn on)."""
    from facevlm.data.synth.scene import BACKGROUNDS

    return bool(record.meta.get("renderer")) and record.meta.get("background") in BACKGROUNDS


def image_size(image: Any) -> tuple[int, int] | None:
    """(width, height) of a PIL image or an HxWxC array without decoding anything; None otherwise."""
    size = getattr(image, "size", None)
    if isinstance(size, tuple) and len(size) == 2:
        return int(size[0]), int(size[1])
    shape = getattr(image, "shape", None)
    return (int(shape[1]), int(shape[0])) if shape is not None and len(shape) >= 2 else None


def noface_ref(record: FaceRecord, photo: Sequence[PhotoFace] | None = None) -> str | None:
    """The image ref of a face-free picture for `record`, or None when there is none.

    `photo` is every face of the record's photo (photos.photo_index); a multi-face photo without it gets
    no crop, since a face-free region cannot be known without all of its boxes."""
    if is_synthetic(record):
        return f"{BG}{record.id}"
    size = image_size(record.image)
    if size is None or record.box is None:
        return None
    if record.n_faces <= 1:
        boxes: list[Sequence[float]] = [record.box]
    elif photo is not None:
        boxes = [f.box for f in photo]
    else:
        return None
    region = face_free_box(size, boxes)
    return None if region is None else f"{CROP}{','.join(str(v) for v in region)}:{record.id}"


def parse_ref(ref: str) -> tuple[str, str, tuple[int, int, int, int] | None] | None:
    """(BG or CROP, record id, crop box or None) of a face-free image ref; None for any other ref."""
    if ref.startswith(BG):
        return BG, ref[len(BG) :], None
    if ref.startswith(CROP):
        box, _, rid = ref[len(CROP) :].partition(":")
        values = box.split(",")
        if len(values) == 4 and all(v.isdigit() for v in values) and rid:
            x0, y0, x1, y1 = (int(v) for v in values)
            return CROP, rid, (x0, y0, x1, y1)
    return None


def background_image(record: FaceRecord) -> Any:
    """The renderer's background of a synthetic record's kind, at its size, with camera blur and noise."""
    return render_background(record.id, record.meta["background"], image_size(record.image) or (160, 160))


def render_background(rid: str, kind: str, size: tuple[int, int]) -> Any:
    """`background_image` from what it depends on: the record id (the seed), background kind and size."""
    import cv2
    import numpy as np
    from PIL import Image

    from facevlm.data.synth.background import background
    from facevlm.data.synth.render import SUPERSAMPLE

    seed = zlib.crc32(rid.encode("utf-8"))
    rng = np.random.default_rng([seed, 1])
    w, h = size
    n = max(w, h)  # drawn at the renderer's supersampling, then area-reduced as it reduces
    img = cv2.resize(background(kind, seed, n * SUPERSAMPLE), (n, n), interpolation=cv2.INTER_AREA)
    blur = float(rng.choice([0.0, 0.0, 0.5, 0.9]))  # the renderer's camera (scene.py)
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(1.0, 5.0))
    return Image.fromarray(np.clip(img[:h, :w] + 0.5, 0, 255).astype(np.uint8))


def _write_background(path: str, rid: str, kind: str, size: tuple[int, int], quality: int) -> None:
    render_background(rid, kind, size).save(path, format="JPEG", quality=quality)


class Backgrounds:
    """Writes `bg:` pictures as JPEG files, in `workers` worker processes (0: in this one).

    Why: they cost ~1.5 ms each to draw and a 12k-face build asks for ~12k of them, all in the exporter's
    one process while the second core idles. Each picture depends only on (record id, kind, size), so a
    worker draws exactly what this process would; `wait` returns once every file is written (and raises
    the first error)."""

    def __init__(self, workers: int = 0):
        self.workers, self.pool = workers, None  # the pool starts with the first picture: none, none started
        self.pending: list[Any] = []

    def write(self, path: Path, record: FaceRecord, quality: int) -> None:
        args = (str(path), record.id, record.meta["background"], image_size(record.image) or (160, 160), quality)
        if not self.workers:
            _write_background(*args)
            return
        if self.pool is None:
            from concurrent.futures import ProcessPoolExecutor

            from facevlm.procs import worker_context

            self.pool = ProcessPoolExecutor(self.workers, worker_context())
        self.pending.append(self.pool.submit(_write_background, *args))

    def wait(self) -> None:
        pending, self.pending = self.pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def face_free_crop(record: FaceRecord, box: tuple[int, int, int, int]) -> Any:
    """The face-free square `box` of the record's photo (upright RGB, as every stage sees it)."""
    from facevlm.image import open_image

    return open_image(record.image).crop(box)
