"""`facevlm data detect`: find the faces in whole-image records, one record per kept face.

Records that already have a box (datasets distributed as face crops or with boxes) pass through
untouched. For the others the detector runs once per image; faces are kept by the FaceCaption-15M rule
(shorter side > 128 px at confidence > 0.98 by default) and every drop is counted by reason, so a user can
see what a filter costs before training on the result.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import click

from facevlm.data.schema import FaceRecord

DETECTOR_NAMES = {"ssd": "opencv-ssd-res10", "hog": "dlib-hog", "mmod": "dlib-mmod"}


@dataclass
class DetectStageConfig:
    """Filters of the detect stage. `min_confidence` is in the backend's score units (a probability for
    the default ssd); faces scoring below `floor` are not faces at all and are not counted as drops."""

    min_size: float = 128.0
    min_confidence: float = 0.98
    floor: float = 0.5
    backend: str = "ssd"
    landmarks: bool = True
    batch_size: int = 16


@dataclass
class DetectSummary:
    images: int = 0  # records without a box that went through the detector
    passed_through: int = 0  # records that already had a box
    kept: int = 0  # face records written
    images_without_faces: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> faces

    def lines(self) -> list[str]:
        drops = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
        return [f"images {self.images}: kept {self.kept} faces; dropped faces: {drops}; "
                f"images with no face kept {self.images_without_faces}",
                f"records passed through (already had a box): {self.passed_through}"]


def detect_records(records: Iterable[FaceRecord], config: DetectStageConfig | None = None,
                   summary: DetectSummary | None = None, detector=None) -> Iterator[FaceRecord]:
    """Yield one record per kept face for box-less records (ids get `#k`), others unchanged."""
    from facevlm.vision.detect import DetectorConfig, FaceDetector

    config = config or DetectStageConfig()
    summary = summary if summary is not None else DetectSummary()
    if detector is None:
        detector = FaceDetector(DetectorConfig(backend=config.backend, min_confidence=min(config.floor, config.min_confidence),
                                               landmarks=config.landmarks, batch_size=config.batch_size))
    pending: list[FaceRecord] = []
    for record in records:
        if record.box is not None:  # flush first: output keeps the input order
            if pending:
                yield from _detect_batch(pending, detector, config, summary)
                pending = []
            summary.passed_through += 1
            yield record
            continue
        pending.append(record)
        if len(pending) >= config.batch_size:
            yield from _detect_batch(pending, detector, config, summary)
            pending = []
    if pending:
        yield from _detect_batch(pending, detector, config, summary)


def _detect_batch(records: list[FaceRecord], detector, config: DetectStageConfig,
                  summary: DetectSummary) -> Iterator[FaceRecord]:
    from facevlm.data.store import open_image

    images = [open_image(r.image) for r in records]
    for record, found in zip(records, detector.detect_batch(images)):
        summary.images += 1
        kept = []
        for det in found:
            if det.score < config.min_confidence:
                summary.dropped["low_confidence"] += 1
            elif det.size < config.min_size:
                summary.dropped["too_small"] += 1
            else:
                kept.append(det)
        if not kept:
            summary.images_without_faces += 1
        for k, det in enumerate(kept):
            summary.kept += 1
            meta = dict(record.meta, detector=DETECTOR_NAMES.get(config.backend, config.backend))
            if len(det.landmarks):
                meta["landmark_format"] = "dlib5"
            yield dataclasses.replace(
                record, id=f"{record.id}#{k}", image_key=record.image_key or record.id,
                box=[round(float(v), 2) for v in det.box], det_score=det.score, n_faces=len(found),
                landmarks=[[round(float(x), 2), round(float(y), 2)] for x, y in det.landmarks],
                attributes=list(record.attributes), captions=list(record.captions), meta=meta)


@click.command("detect", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("in_dataset")
@click.argument("out_dataset")
@click.option("--min-size", type=float, default=128.0, show_default=True, help="Shorter face side, pixels.")
@click.option("--min-conf", type=float, default=0.98, show_default=True, help="Detector confidence.")
@click.option("--backend", type=click.Choice(sorted(DETECTOR_NAMES)), default="ssd", show_default=True,
              help="ssd: OpenCV res10 SSD (needs OpenCV<5); hog/mmod: dlib (scores are margins, not probabilities).")
@click.option("--no-landmarks", is_flag=True, help="Skip the dlib 5-point landmarks.")
@click.option("--batch-size", type=int, default=16, show_default=True)
def detect_cmd(in_dataset: str, out_dataset: str, min_size: float, min_conf: float, backend: str,
               no_landmarks: bool, batch_size: int) -> None:
    """Detect faces in IN_DATASET's whole-image records and save one record per kept face to OUT_DATASET."""
    from tqdm import tqdm

    from facevlm.data.store import iter_records, load_records, save_records

    ds = load_records(in_dataset)
    config = DetectStageConfig(min_size=min_size, min_confidence=min_conf, backend=backend,
                               landmarks=not no_landmarks, batch_size=batch_size,
                               floor=min(0.5, min_conf) if backend == "ssd" else min(0.0, min_conf))
    summary = DetectSummary()
    records = detect_records(tqdm(iter_records(ds), total=len(ds), desc="detect", unit="img"), config, summary)
    path = save_records(records, out_dataset)
    for line in summary.lines():
        click.echo(line)
    click.echo(f"saved {summary.kept + summary.passed_through} records to {path}")
