"""`facevlm demo`: the face experts on the real sample photos (and a few frames of each sample video).

It prints one table row per face and saves a contact sheet (every photo with its boxes and expression
labels) so a person can check in one glance that the boxes land on faces and the labels are plausible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from facevlm.errors import FacevlmError

TILE = (480, 360)  # contact-sheet cell (w, h) for each photo
COLUMNS = 4


@dataclass
class FaceRow:
    source: str
    index: int
    box: tuple[float, float, float, float]
    score: float
    expression: str
    prob: float


def sample_images(frames_per_video: int, limit: int | None = None) -> list[tuple[str, Any]]:
    """(name, upright RGB image) for every sample photo and a few frames of every sample video (first
    `limit` files), read as the data engine's `samples` source reads them."""
    from facevlm import assets
    from facevlm.data.adapters.base import ImportSummary
    from facevlm.data.adapters.samples import video_frames
    from facevlm.image import open_image

    out: list[tuple[str, Any]] = []
    for item in assets.samples()[:limit]:
        if item["kind"] == "image":
            out.append((item["file"], open_image(item["path"])))
        elif item["kind"] == "video" and frames_per_video > 0:
            frames = video_frames(Path(item["path"]), frames_per_video, item["file"], ImportSummary("samples", "demo"))
            out.extend((f"{Path(item['file']).name}@{index}", open_image(image["bytes"])) for index, image in frames)
    return out


def analyse(images: list[tuple[str, Any]], pipeline) -> list[list[FaceRow]]:
    """Faces and their expressions (facevlm.vision.pipeline); one list of rows per image."""
    rows = []
    for (name, _), faces in zip(images, pipeline.run_batch([img for _, img in images])):
        rows.append(
            [
                FaceRow(name, k, face.box, face.score, face.expression.value, face.expression.prob)
                for k, face in enumerate(faces)
            ]
        )
    return rows


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # Pillow's bundled FreeType font: scalable, no system fonts


def contact_sheet(images: list[tuple[str, Any]], rows: list[list[FaceRow]], path: Path) -> Path:
    """A grid of the photos, each with a box and an "expression p=0.xx" label on every face."""
    from PIL import Image, ImageDraw

    label_font, name_font = _font(18), _font(16)
    n_rows = max(1, (len(images) + COLUMNS - 1) // COLUMNS)
    caption = 24
    sheet = Image.new("RGB", (COLUMNS * TILE[0], n_rows * (TILE[1] + caption)), "white")
    for i, ((name, image), faces) in enumerate(zip(images, rows)):
        photo = Image.fromarray(np.asarray(image))
        scale = min(TILE[0] / photo.width, TILE[1] / photo.height)
        photo = photo.resize((max(1, round(photo.width * scale)), max(1, round(photo.height * scale))))
        draw = ImageDraw.Draw(photo)
        boxes = [tuple(v * scale for v in face.box) for face in faces]
        for x0, y0, x1, y1 in boxes:
            draw.rectangle((x0, y0, x1, y1), outline=(0, 255, 0), width=3)
        placed: list[tuple[float, float, float, float]] = []
        for face, (x0, y0, _, y1) in zip(faces, boxes):
            text = f"{face.expression} p={face.prob:.2f}"
            left, top, right, bottom = draw.textbbox((0, 0), text, font=label_font)
            w, h = right - left + 6, bottom - top + 6
            tx = min(max(0.0, x0), max(0.0, photo.width - w))
            # above the box, else below it, else inside its top edge: the first spot no other label uses
            spots = [(tx, y0 - h), (tx, y1 + 1), (tx, y0 + 3)]
            free = [
                (sx, sy)
                for sx, sy in spots
                if sy >= 0
                and sy + h <= photo.height
                and not any(sx < px1 and px0 < sx + w and sy < py1 and py0 < sy + h for px0, py0, px1, py1 in placed)
            ]
            tx, ty = (free or [(tx, max(0.0, y0 - h))])[0]
            placed.append((tx, ty, tx + w, ty + h))
            draw.rectangle((tx, ty, tx + w, ty + h), fill=(0, 0, 0))
            draw.text((tx + 3, ty + 3 - top), text, fill=(255, 255, 0), font=label_font)
        cx, cy = (i % COLUMNS) * TILE[0], (i // COLUMNS) * (TILE[1] + caption)
        sheet.paste(photo, (cx + (TILE[0] - photo.width) // 2, cy + (TILE[1] - photo.height) // 2))
        ImageDraw.Draw(sheet).text(
            (cx + 6, cy + TILE[1] + 3), f"{name}: {len(faces)} face(s)", fill=(0, 0, 0), font=name_font
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder [default: $FACEVLM_HOME/demo].",
)
@click.option(
    "--backend",
    type=click.Choice(["ssd", "hog", "mmod"]),
    default="ssd",
    show_default=True,
    help="Face detector (see facevlm.vision.detect).",
)
@click.option("--min-conf", type=float, default=0.9, show_default=True, help="Detector confidence threshold.")
@click.option("--frames", type=int, default=3, show_default=True, help="Frames sampled from each sample video.")
@click.option("--limit", type=int, default=None, help="Only the first N sample files (a quick look).")
def demo(out_dir: Path | None, backend: str, min_conf: float, frames: int, limit: int | None) -> None:
    """Detect faces and their expressions on the real sample photos; print a table, save a contact sheet."""
    from rich.console import Console
    from rich.table import Table

    from facevlm import paths
    from facevlm.vision.detect import DetectorConfig
    from facevlm.vision.pipeline import FacePipeline, PipelineConfig

    images = sample_images(frames, limit)
    if not images:
        raise FacevlmError("the samples asset lists no images or videos")
    pipeline = FacePipeline(
        PipelineConfig(detector=DetectorConfig(backend=backend, min_confidence=min_conf, landmarks=False))
    )
    rows = analyse(images, pipeline)
    table = Table(title=f"facevlm demo: {len(images)} images, {sum(map(len, rows))} faces")
    for column in ("file", "face #", "box (x0, y0, x1, y1)", "score", "expression", "p"):
        table.add_column(column)
    for faces in rows:
        for f in faces:
            table.add_row(
                f.source,
                str(f.index),
                ", ".join(f"{v:.0f}" for v in f.box),
                f"{f.score:.3f}",
                f.expression,
                f"{f.prob:.2f}",
            )
    console = Console()
    console.print(table)
    sheet = contact_sheet(images, rows, (out_dir or paths.home() / "demo") / "contact_sheet.png")
    console.print(f"contact sheet: {sheet}")
