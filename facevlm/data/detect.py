"""`facevlm data detect`: find the faces in whole-image records, one record per kept face.

Records that already have a box (datasets distributed as face crops or with boxes, hand-labelled photos)
are not detected again; when landmarks are on and such a record has none, the 5 landmarks are found
inside its box by the same predictor and stored as a detected face's are (pseudo: `meta.landmark_origin`),
so a hand-boxed face aligns like a detected one. For the others the detector runs once per image; faces
are kept by the FaceCaption-15M rule (shorter side > 128 px at confidence > 0.98 by default) and every drop
is counted by reason, so a user can see what a filter costs before training on the result.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import click

from facevlm.batching import batched
from facevlm.schema import FaceRecord
from facevlm.vision.detect import LANDMARK_FORMAT, DetectorConfig

DETECTOR_NAMES = {"ssd": "opencv-ssd-res10", "hog": "dlib-hog", "mmod": "dlib-mmod"}
LANDMARK_ORIGIN = "pseudo"  # every stored landmark comes from dlib's predictor, never from a hand


def facecaption_rule(**overrides) -> DetectorConfig:
    """The stage's default filter, FaceCaption-15M's: shorter side >= 128 px at confidence >= 0.98."""
    return DetectorConfig(**{"min_size": 128.0, "min_confidence": 0.98, **overrides})


@dataclass
class DetectSummary:
    images: int = 0  # records without a box that went through the detector
    passed_through: int = 0  # records that already had a box
    landmarked: int = 0  # of those: landmarks found inside their box (they had none)
    kept: int = 0  # face records written
    images_without_faces: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> faces

    def to_dict(self) -> dict:
        """JSON for the dataset's provenance (recipe.json `stages.detect`); `lines` is what `data info` prints."""
        return {**dataclasses.asdict(self), "dropped": dict(self.dropped), "lines": self.lines()}

    def lines(self) -> list[str]:
        drops = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
        return [
            f"images {self.images}: kept {self.kept} faces; dropped faces: {drops}; "
            f"images with no face kept {self.images_without_faces}",
            f"records passed through (already had a box): {self.passed_through}; "
            f"landmarks added inside their box: {self.landmarked}",
        ]


def detect_records(
    records: Iterable[FaceRecord],
    config: DetectorConfig | None = None,
    summary: DetectSummary | None = None,
    pipeline=None,
) -> Iterator[FaceRecord]:
    """Yield one record per kept face for box-less records (ids get `#k`), others unchanged, in input
    order. Faces come from `facevlm.vision.pipeline` (detection only: labelling is the next stage), so
    a record's box and landmarks are exactly what the gallery ingest finds on the same photo."""
    from facevlm.vision.pipeline import FacePipeline, PipelineConfig

    config = config or facecaption_rule()
    summary = summary if summary is not None else DetectSummary()
    pipeline = pipeline or FacePipeline(PipelineConfig(detector=config, expression=False))
    for batch in batched(records, config.batch_size):
        todo = [r for r in batch if r.box is None]
        found = iter(pipeline.detect_batch([r.image for r in todo], summary.dropped) if todo else [])
        for record in batch:
            if record.box is not None:
                summary.passed_through += 1
                yield (
                    _with_landmarks(record, pipeline, summary) if config.landmarks and not record.landmarks else record
                )
            else:
                yield from _face_records(record, next(found), config, summary)


def _with_landmarks(record: FaceRecord, pipeline, summary: DetectSummary) -> FaceRecord:
    """`record` with the 5 landmarks inside its given box (the box itself is left as it was)."""
    (points,) = pipeline.landmarks_in(record.image, [record.box])
    summary.landmarked += 1
    meta = dict(record.meta, landmark_format=LANDMARK_FORMAT, landmark_origin=LANDMARK_ORIGIN)
    return dataclasses.replace(record, landmarks=points, meta=meta)


def _face_records(
    record: FaceRecord, faces: list, config: DetectorConfig, summary: DetectSummary
) -> Iterator[FaceRecord]:
    """One record per kept face of `record`'s image (`faces` from the pipeline)."""
    summary.images += 1
    summary.images_without_faces += not faces
    for k, face in enumerate(faces):
        summary.kept += 1
        meta = dict(record.meta, detector=DETECTOR_NAMES.get(config.backend, config.backend))
        if len(face.landmarks):
            meta.update(landmark_format=face.landmark_format, landmark_origin=LANDMARK_ORIGIN)
        yield dataclasses.replace(
            record,
            id=f"{record.id}#{k}",
            image_key=record.image_key or record.id,
            box=list(face.box),
            det_score=face.score,
            n_faces=face.n_faces,
            landmarks=face.landmarks.tolist(),
            attributes=list(record.attributes),
            captions=list(record.captions),
            meta=meta,
        )


@click.command("detect", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("in_dataset")
@click.argument("out_dataset")
@click.option("--min-size", type=float, default=128.0, show_default=True, help="Shorter face side, pixels.")
@click.option("--min-conf", type=float, default=0.98, show_default=True, help="Detector confidence.")
@click.option(
    "--backend",
    type=click.Choice(sorted(DETECTOR_NAMES)),
    default="ssd",
    show_default=True,
    help="ssd: OpenCV's res10 SSD (run in torch); hog/mmod: dlib (scores are margins, not probabilities).",
)
@click.option("--no-landmarks", is_flag=True, help="Skip the dlib 5-point landmarks.")
@click.option("--batch-size", type=int, default=DetectorConfig.batch_size, show_default=True)
def detect_cmd(
    in_dataset: str,
    out_dataset: str,
    min_size: float,
    min_conf: float,
    backend: str,
    no_landmarks: bool,
    batch_size: int,
) -> None:
    """Detect faces in IN_DATASET's whole-image records and save one record per kept face to OUT_DATASET."""
    from tqdm import tqdm

    from facevlm.data.store import iter_records, load_records, save_records

    ds = load_records(in_dataset)
    config = facecaption_rule(
        min_size=min_size, min_confidence=min_conf, backend=backend, landmarks=not no_landmarks, batch_size=batch_size
    )
    summary = DetectSummary()
    records = detect_records(tqdm(iter_records(ds), total=len(ds), desc="detect", unit="img"), config, summary)
    path = save_records(records, out_dataset)
    for line in summary.lines():
        click.echo(line)
    click.echo(f"saved {summary.kept + summary.passed_through} records to {path}")
