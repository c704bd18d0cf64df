"""Add images to a gallery: decode safely -> face pipeline (detect, crop, expression) -> embed (FaceCLIP,
and the identity model in a gallery with an identity space) -> store.

Crash-safe and resumable: every image is committed as one transaction after its files are on disk, and
an image whose content hash is already in the gallery is skipped, so re-running the same command after a
crash (kill -9, power loss) finishes the job without duplicates. Embedding is batched across images;
commits stay per image so a crash loses at most the images in flight.

Faces come from `facevlm.vision.pipeline`, the same code the data engine labels its records with, so a
photo added here has the box, training crop and pseudo-labels `facevlm data detect/label` give it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facevlm.batching import batched
from facevlm.errors import FacevlmError
from facevlm.image import DecodedImage, ImageLimits, decode_image, open_image
from facevlm.index.store import FaceEntry, Gallery, ImageBlob
from facevlm.schema import FaceRecord
from facevlm.vision.crop import TRAINING_MARGIN, face_crop
from facevlm.vision.detect import DetectorConfig
from facevlm.vision.pipeline import Expression, Face, FacePipeline, PipelineConfig

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


@dataclass
class IngestConfig:
    """`detect: false` treats every image as one pre-cropped face. `label` adds expression pseudo-labels
    (asset fer-mini-xception). Crops are FaceCLIP training crops (`facevlm.vision.crop`) with `margin`;
    None: the margin the gallery's FaceCLIP was trained with (`crop_margin`)."""

    detect: bool = True
    label: bool = True
    detector: DetectorConfig = field(default_factory=lambda: DetectorConfig(min_confidence=0.6, min_size=20))
    margin: float | None = None
    batch_size: int = 32
    keep_originals: bool = True
    skip_existing: bool = True
    limits: ImageLimits = field(default_factory=ImageLimits)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or (self.margin is not None and self.margin < 0):
            raise FacevlmError(f"ingest batch_size ({self.batch_size}) must be >= 1 and margin ({self.margin}) >= 0")


def crop_margin(cfg: IngestConfig, embedder: Any) -> float:
    """The crop margin for a gallery of `embedder`'s vectors: the config's, else the one its FaceCLIP was
    trained with (`crop_margin` in the model folder's facevlm_clip.json), else FaceCLIP's default."""
    if cfg.margin is not None:
        return cfg.margin
    return float(embedder.clip.meta.get("crop_margin", TRAINING_MARGIN))


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
    identity: str | None = None


def _face_count(item: _Pending | IngestResult) -> int:
    """Faces an item adds to an embedding batch (a skipped or failed image adds none)."""
    return len(item.entries) if isinstance(item, _Pending) else 0


class FaceExperts:
    """The gallery's face pipeline (detector and expression model loaded on first use), cropping with
    `margin` (default: the config's, else FaceCLIP's default). One server shares it between ingests,
    searches and chats on several threads, and OpenCV's networks are not thread-safe: one lock."""

    def __init__(self, cfg: IngestConfig, margin: float | None = None):
        self.cfg, self.lock = cfg, threading.Lock()
        margin = cfg.margin if margin is None else margin
        self.pipeline = FacePipeline(
            PipelineConfig(
                detector=cfg.detector, expression=cfg.label, crop_margin=TRAINING_MARGIN if margin is None else margin
            )
        )

    def faces(self, image: Any) -> list[Face]:
        """Every kept face of `image` with its crop and (with `label`) its expression; one whole-image
        face when not detecting."""
        with self.lock:
            if self.cfg.detect:
                return self.pipeline.run(image)
            return list(self.pipeline.label([self.pipeline.face(image)]))

    def query_face(self, image: Any) -> Face | None:
        """The largest face in a query photo (None: no face), for face search."""
        with self.lock:
            found = self.pipeline.detect_batch([image])[0]
        return max(found, key=lambda f: f.area) if found else None

    def expression(self, image: Any, cropped: bool = False, box: Sequence[float] | None = None) -> Expression | None:
        """The expression expert's verdict on the one face of a photo (`cropped`: the image is a face crop,
        e.g. a gallery face's; `box`: where the one face is, already found): what the gallery would label it
        with. None when labelling is off, or the photo shows no face or several (whose would it be?)."""
        if not self.cfg.label:
            return None
        with self.lock:
            if box is not None or cropped or not self.cfg.detect:
                faces = [self.pipeline.face(image, None if cropped else box)]
            else:
                faces = self.pipeline.detect_batch([image])[0]
            if len(faces) != 1:
                return None
            return self.pipeline.label(faces)[0].expression

    def query_crop(self, image: Any, margin: float) -> Any | None:
        """The training crop of the largest face in a query photo (None: no face), for face search."""
        best = self.query_face(image)
        return None if best is None else face_crop(best.image, best.box, margin)

    def single_face(self, image: Any, where: str) -> Face:
        """The one face of a photo that must show one (verification): none, or several, is refused, since
        answering about "the" face of a group photo would be a guess."""
        if not self.cfg.detect:
            return self.pipeline.face(image)
        with self.lock:
            found = self.pipeline.detect_batch([image])[0]
        if not found:
            raise FacevlmError(f"{where}: no face found in the image", code="no_face")
        if len(found) > 1:
            raise FacevlmError(
                f"{where}: {len(found)} faces found; give a photo (or crop) of one face", code="multiple_faces"
            )
        return found[0]


class Ingestor:
    """Feeds images or FaceRecords into one gallery; see the module docstring for crash behaviour.
    `identity`: the identity model (facevlm.vision.identity) of a gallery with an identity space
    (default: the one it records); a gallery without one gets no identity vectors until migrated."""

    def __init__(self, gallery: Gallery, embedder: Any, cfg: IngestConfig | None = None, identity: Any = None):
        if embedder.dim != gallery.dim:
            raise FacevlmError(
                f"model {embedder.model} gives {embedder.dim}-d vectors; gallery {gallery.root} "
                f"holds {gallery.dim}-d {gallery.model} vectors"
            )
        self.gallery, self.embedder = gallery, embedder
        self.cfg = cfg or IngestConfig()
        self.experts = FaceExperts(self.cfg, crop_margin(self.cfg, embedder))
        self.identity = None
        if gallery.identity is not None:
            from facevlm.vision.identity import load_identity_model

            self.identity = identity or load_identity_model(gallery.identity.spec.model)
            gallery.identity.check(self.identity, f"gallery {gallery.root.name}")

    def _identity_vectors(self, faces: list[Face]) -> list[np.ndarray | None]:
        """Identity descriptors of the faces of one image (None each without an identity space)."""
        if self.identity is None or not faces:
            return [None] * len(faces)
        return list(self.identity.embed(faces[0].image, faces))

    # -- images ------------------------------------------------------------------------------------
    def add_bytes(self, items: Iterable[tuple[str, bytes, str | None]]) -> Iterator[IngestResult]:
        """(source name, raw bytes, identity or None) -> one result per image, in input order; images
        are embedded in batches of about `batch_size` faces."""
        queued: set[str] = set()  # hashes in this run: a duplicate within one batch is skipped too
        prepared = (self._prepare(source, data, identity, queued) for source, data, identity in items)
        for batch in batched(prepared, self.cfg.batch_size, weight=_face_count):
            yield from self._commit(batch)

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
        faces = self.experts.faces(decoded.image)
        entries = [
            FaceEntry(
                np.zeros(0, np.float32),
                crop=face.crop,
                box=None if face.box is None else list(face.box),
                landmarks=face.landmarks.tolist(),
                det_score=face.score,
                identity=identity,
                source=source,
                meta={"n_faces": face.n_faces},
                attributes=face.expression.attributes() if face.expression else [],
                identity_vector=vector,
            )
            for face, vector in zip(faces, self._identity_vectors(faces))
        ]
        return _Pending(source, decoded, entries, identity)

    def _commit(self, queue: list[_Pending | IngestResult]) -> Iterator[IngestResult]:
        pending = [p for p in queue if isinstance(p, _Pending)]
        vectors = self.embedder.images([e.crop for p in pending for e in p.entries])
        row = 0
        for item in queue:
            if isinstance(item, IngestResult):
                yield item
                continue
            for entry in item.entries:
                entry.embedding = vectors[row]
                row += 1
            d = item.decoded
            blob = ImageBlob(
                d.sha256, d.data if self.cfg.keep_originals else None, d.ext, item.source, d.image.width, d.image.height
            )
            yield IngestResult(item.source, self.gallery.add_faces(item.entries, blob))

    # -- face records (datasets, synthetic faces) ---------------------------------------------------
    def add_records(self, records: Iterable[FaceRecord]) -> Iterator[IngestResult]:
        """Stored/synthetic FaceRecords keep their boxes, identities and labels (gt and pseudo alike)."""
        for batch in batched(records, self.cfg.batch_size):
            yield from self._commit_records(batch)

    def _commit_records(self, batch: list[FaceRecord]) -> Iterator[IngestResult]:
        keys = [hashlib.sha256(f"record:{r.source}:{r.id}".encode()).hexdigest() for r in batch]
        todo = []
        for record, key in zip(batch, keys):
            if self.cfg.skip_existing and self.gallery.has_image(key):
                yield IngestResult(record.id, status="skipped")
            else:
                todo.append((record, key))
        # the record's own face, cut by the one crop rule (the pipeline does no detection here)
        faces = [
            self.experts.pipeline.face(
                open_image(r.image, where=r.id),
                r.box,
                r.landmarks,
                landmark_format=r.meta.get("landmark_format", "dlib5"),
            )
            for r, _ in todo
        ]
        vectors = self.embedder.images([f.crop for f in faces])
        for (record, key), face, vec in zip(todo, faces, vectors):
            entry = FaceEntry(
                vec,
                crop=face.crop,
                box=record.box,
                landmarks=record.landmarks,
                det_score=record.det_score,
                identity=record.identity,
                attributes=list(record.attributes),
                source=record.source,
                licence=record.licence,
                meta={**record.meta, "record_id": record.id},
                identity_vector=self._identity_vectors([face])[0],
            )
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
