"""Add images to a gallery: decode safely -> detect -> align -> embed -> pseudo-label -> store.

Crash-safe and resumable: every image is committed as one transaction after its files are on disk, and
an image whose content hash is already in the gallery is skipped, so re-running the same command after a
crash (kill -9, power loss) finishes the job without duplicates. Embedding is batched across images;
commits stay per image so a crash loses at most the images in flight.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from facevlm.data.schema import EXPRESSIONS, AttributeValue, FaceRecord
from facevlm.errors import FacevlmError
from facevlm.index.store import FaceEntry, Gallery, ImageBlob
from facevlm.serve.images import DecodedImage, ImageLimits, decode_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


@dataclass
class IngestConfig:
    """`detect: false` treats every image as one pre-cropped face. `label` adds expression pseudo-labels
    (asset fer-mini-xception). Crops are the detector box widened by `margin`, the same crops FaceCLIP is
    trained on (facevlm.data.store.face_crop); the 5-point aligned crop feeds the expression model."""

    detect: bool = True
    label: bool = True
    min_confidence: float = 0.6
    min_size: int = 20
    margin: float = 0.2
    aligned_size: int = 112
    batch_size: int = 32
    keep_originals: bool = True
    skip_existing: bool = True
    limits: ImageLimits = field(default_factory=ImageLimits)


@dataclass
class IngestResult:
    source: str
    face_ids: list[int] = field(default_factory=list)
    status: str = "added"  # added | skipped (already in the gallery) | no_face | error
    error: str = ""


@dataclass
class _Pending:
    source: str
    decoded: DecodedImage
    entries: list[FaceEntry]
    crops: list[Any]
    identity: str | None = None


def margin_crop(image: Any, box: list[float] | None, margin: float) -> Any:
    """The box widened by `margin` of its size on each side, clipped to the image (whole image if None)."""
    if box is None:
        return image
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    w, h = image.size
    return image.crop((max(0, int(x0 - dx)), max(0, int(y0 - dy)), min(w, int(x1 + dx)), min(h, int(y1 + dy))))


class FaceExperts:
    """Detector, aligner and expression model from facevlm.vision, loaded on first use."""

    def __init__(self, cfg: IngestConfig):
        self.cfg = cfg
        self._detector = None
        self._expression = None

    def detect(self, image: Any) -> list[tuple[list[float], float, list[list[float]]]]:
        if self._detector is None:
            from facevlm.vision.detect import DetectorConfig, FaceDetector

            self._detector = FaceDetector(DetectorConfig(min_confidence=self.cfg.min_confidence,
                                                         min_size=self.cfg.min_size))
        found = self._detector.detect(image)
        return [(list(map(float, d.box)), float(d.score), [list(map(float, p)) for p in d.landmarks])
                for d in found]

    def aligned(self, image: Any, box: list[float] | None, landmarks: list[list[float]]) -> Any:
        if len(landmarks) == 5:
            from facevlm.vision.align import align_face

            return align_face(image, np.asarray(landmarks, np.float32), size=self.cfg.aligned_size)  # RGB uint8
        return margin_crop(image, box, 0.0)

    def expressions(self, crops: list[Any]) -> np.ndarray:
        if self._expression is None:
            from facevlm.vision.expression import ExpressionModel

            self._expression = ExpressionModel()
        return np.asarray(self._expression.predict(crops))


class Ingestor:
    """Feeds images or FaceRecords into one gallery; see the module docstring for crash behaviour."""

    def __init__(self, gallery: Gallery, embedder: Any, cfg: IngestConfig | None = None):
        if embedder.dim != gallery.dim:
            raise FacevlmError(f"model {embedder.model} gives {embedder.dim}-d vectors; gallery {gallery.root} "
                               f"holds {gallery.dim}-d {gallery.model} vectors")
        self.gallery, self.embedder = gallery, embedder
        self.cfg = cfg or IngestConfig()
        self.experts = FaceExperts(self.cfg)

    # -- images ------------------------------------------------------------------------------------
    def add_bytes(self, items: Iterable[tuple[str, bytes, str | None]]) -> Iterator[IngestResult]:
        """(source name, raw bytes, identity or None) -> one result per image, in input order."""
        queue: list[_Pending | IngestResult] = []  # results wait for the embedding batch they follow
        queued: set[str] = set()
        for source, data, identity in items:
            queue.append(self._prepare(source, data, identity, queued))
            if sum(len(p.crops) for p in queue if isinstance(p, _Pending)) >= self.cfg.batch_size:
                yield from self._commit(queue)
                queue, queued = [], set()
        yield from self._commit(queue)

    def _prepare(self, source: str, data: bytes, identity: str | None, queued: set[str]) -> _Pending | IngestResult:
        try:
            decoded = decode_image(data, self.cfg.limits, where=source)
            if self.cfg.skip_existing and (decoded.sha256 in queued or self.gallery.has_image(decoded.sha256)):
                return IngestResult(source, status="skipped")
            item = self._faces(source, decoded, identity)
        except FacevlmError as exc:
            return IngestResult(source, status="error", error=str(exc))
        if not item.entries:
            return IngestResult(source, status="no_face")
        queued.add(decoded.sha256)
        return item

    def add_paths(self, paths: Iterable[Path], identity: str | None = None) -> Iterator[IngestResult]:
        def read() -> Iterator[tuple[str, bytes, str | None]]:
            for path in paths:
                yield str(path), Path(path).read_bytes(), identity

        return self.add_bytes(read())

    def _faces(self, source: str, decoded: DecodedImage, identity: str | None) -> _Pending:
        image = decoded.image
        if not self.cfg.detect:
            found = [(None, 1.0, [])]
        else:
            found = self.experts.detect(image)
        crops = [margin_crop(image, box, self.cfg.margin) for box, _, _ in found]
        entries = [FaceEntry(np.zeros(0), crop=crop, box=box, landmarks=lm, det_score=score, identity=identity,
                             source=source, meta={"n_faces": len(found)})
                   for (box, score, lm), crop in zip(found, crops)]
        if self.cfg.label and entries:
            aligned = [self.experts.aligned(image, box, lm) for box, _, lm in found]
            for entry, probs in zip(entries, self.experts.expressions(aligned)):
                best = int(np.argmax(probs))
                entry.attributes.append(AttributeValue("expression", EXPRESSIONS[best], "pseudo",
                                                       float(probs[best]), "fer-mini-xception"))
        return _Pending(source, decoded, entries, crops, identity)

    def _commit(self, queue: list[_Pending | IngestResult]) -> Iterator[IngestResult]:
        pending = [p for p in queue if isinstance(p, _Pending)]
        vectors = self.embedder.images([c for p in pending for c in p.crops])
        row = 0
        for item in queue:
            if isinstance(item, IngestResult):
                yield item
                continue
            for entry in item.entries:
                entry.embedding = vectors[row]
                row += 1
            d = item.decoded
            blob = ImageBlob(d.sha256, d.data if self.cfg.keep_originals else None, d.ext, item.source,
                             d.image.width, d.image.height)
            yield IngestResult(item.source, self.gallery.add_faces(item.entries, blob))

    # -- face records (datasets, synthetic faces) ---------------------------------------------------
    def add_records(self, records: Iterable[FaceRecord]) -> Iterator[IngestResult]:
        """Stored/synthetic FaceRecords keep their boxes, identities and labels (gt and pseudo alike)."""
        batch: list[FaceRecord] = []
        for record in records:
            batch.append(record)
            if len(batch) >= self.cfg.batch_size:
                yield from self._commit_records(batch)
                batch = []
        yield from self._commit_records(batch)

    def _commit_records(self, batch: list[FaceRecord]) -> Iterator[IngestResult]:
        if not batch:
            return
        keys = [hashlib.sha256(f"record:{r.source}:{r.id}".encode()).hexdigest() for r in batch]
        for record, key in zip(batch, keys):
            if self.cfg.skip_existing and self.gallery.has_image(key):
                yield IngestResult(record.id, status="skipped")
        todo = [(r, k) for r, k in zip(batch, keys) if not (self.cfg.skip_existing and self.gallery.has_image(k))]
        crops = [margin_crop(r.image.convert("RGB"), r.box, self.cfg.margin) for r, _ in todo]
        vectors = self.embedder.images(crops)
        for (record, key), crop, vec in zip(todo, crops, vectors):
            entry = FaceEntry(vec, crop=crop, box=record.box, landmarks=record.landmarks, det_score=record.det_score,
                              identity=record.identity, attributes=list(record.attributes), source=record.source,
                              licence=record.licence, meta={**record.meta, "record_id": record.id})
            # one image row per record: its hash makes re-running an interrupted import skip what is in
            blob = ImageBlob(key, None, "", f"record:{record.source}:{record.id}")
            yield IngestResult(record.id, self.gallery.add_faces([entry], blob))


def image_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files given directly, plus image files (by suffix) found recursively in given folders; sorted."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            out.append(path)
        else:
            raise FacevlmError(f"{path}: no such file or folder")
    return out
