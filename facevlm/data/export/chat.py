"""The `chat` export (facevlm.data.export): JSONL chat samples from `facevlm.data.qa.qa_samples`, with their
images written beside them.

Image parts are rewritten to paths relative to the output folder, also listed in `images`: a bare record id
becomes that face's crop, `full:<record id>` the whole source photo, `bg:<record id>` and
`nofacecrop:<box>:<record id>` a face-free image (facevlm.data.noface). Synthetic backgrounds are drawn in a
worker process where the set is large (`ExportConfig.workers`), the rest in this one.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from facevlm.data.export import ExportConfig, ExportReport, crop_jpeg
from facevlm.data.noface import Backgrounds
from facevlm.schema import FaceRecord

FULL = "full:"  # qa's ref to the whole photo of a record (face counting) rather than its face crop
UNRESOLVED = "chat sample with an unresolved image ref"
FACE_IN_CROP = "no-face crop in which the face detector finds a face"


def _link_images(node: Any, resolve: Callable[[str], str | None], found: list[str], missing: list[str]) -> Any:
    """Rewrite image parts (`{"type": "image", "image": <record id | full:<record id>>}`) to file paths.

    Resolved paths are appended to `found` in message order; refs `resolve` does not know go to `missing`
    (the caller drops such a sample: a chat sample pointing at a record id instead of a file is unusable).
    """
    if isinstance(node, dict):
        if node.get("type") == "image" and isinstance(node.get("image"), str):
            path = resolve(node["image"])
            if path is None:
                missing.append(node["image"])
                return node
            found.append(path)
            return {**node, "image": path}
        return {k: _link_images(v, resolve, found, missing) for k, v in node.items()}
    if isinstance(node, list):
        return [_link_images(v, resolve, found, missing) for v in node]
    return node


class _ImageWriter:
    """Writes each record's face crop as it streams past, and on demand its whole photo (`full:` refs) or
    a face-free image (noface.py refs).

    qa refers to the current record or to recent partners, so only a bounded window of records is kept
    for whole-photo and face-free writes; photos shared by several faces (same image_key) are written
    once. Refs that cannot be written get their reason in `problems`.
    """

    def __init__(self, out: Path, split: str, cfg: ExportConfig, backgrounds: Any, window: int = 512):
        self.out, self.split, self.cfg, self.window = out, split, cfg, window
        self.backgrounds = backgrounds  # noface.Backgrounds: draws `bg:` pictures, maybe in a worker
        self.crops: dict[str, str] = {}
        self.full: dict[str, str] = {}
        self.blank: dict[str, str | None] = {}
        self.recent: dict[str, FaceRecord] = {}
        self.problems: dict[str, str] = {}
        self._detector: Any = None

    def _path(self, name: str) -> Path:
        rel = Path("images") / self.split / name
        (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
        return rel

    def _write(self, name: str, data: bytes) -> str:
        rel = self._path(name)
        (self.out / rel).write_bytes(data)
        return rel.as_posix()

    def _jpeg(self, image: Any) -> bytes:
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=self.cfg.quality)
        return buf.getvalue()

    def stream(self, records: Iterator[FaceRecord]) -> Iterator[FaceRecord]:
        for record in records:
            self.crops[record.id] = self._write(f"{len(self.crops):07d}.jpg", crop_jpeg(record, self.cfg))
            self.recent[record.id] = record
            if len(self.recent) > self.window:
                self.recent.pop(next(iter(self.recent)))
            yield record

    def resolve(self, ref: str) -> str | None:
        from facevlm.data.noface import parse_ref

        if ref.startswith(FULL):
            return self._full(ref[len(FULL) :])
        blank = parse_ref(ref)
        if blank is not None:
            if ref not in self.blank:
                self.blank[ref] = self._blank(ref, *blank)
            return self.blank[ref]
        return self.crops.get(ref)

    def _full(self, rid: str) -> str | None:
        record = self.recent.get(rid)
        if record is None:
            return None
        key = record.image_key or record.id
        if key not in self.full:
            from facevlm.image import open_image

            self.full[key] = self._write(f"full-{len(self.full):07d}.jpg", self._jpeg(open_image(record.image)))
        return self.full[key]

    def _blank(self, ref: str, kind: str, rid: str, box: tuple[int, int, int, int] | None) -> str | None:
        from facevlm.data.noface import BG, face_free_crop

        record = self.recent.get(rid)
        if record is None:
            return None
        if kind == BG:  # the renderer's background: no face to check for, drawn by `backgrounds`
            rel = self._path(f"noface-{len(self.blank):07d}.jpg")
            self.backgrounds.write(self.out / rel, record, self.cfg.quality)
            return rel.as_posix()
        image = face_free_crop(record, box or (0, 0, 0, 0))
        if self.cfg.check_noface and self._finds_face(image):
            self.problems[ref] = FACE_IN_CROP
            return None
        return self._write(f"noface-{len(self.blank):07d}.jpg", self._jpeg(image))

    def _finds_face(self, image: Any) -> bool:
        """The shipped detector (its own face threshold, no size filter) finds something in `image`."""
        if self._detector is None:
            from facevlm.vision.detect import DetectorConfig, FaceDetector

            self._detector = FaceDetector(DetectorConfig(landmarks=False))
        return self._detector.screen_batch([image])[0].n_faces > 0


def export_chat(ds: Any, out: Path, cfg: ExportConfig, qa_cfg: Any = None) -> ExportReport:
    """Chat samples from `qa_samples`, per split (so no sample mixes faces of two splits).

    Face crops are written as records stream into `qa_samples`; the samples' image refs (record ids,
    `full:<id>` for a whole photo, noface.py's face-free refs) become paths relative to `out`, also listed
    in `images`. The other faces of each multi-face photo are read once from `ds`'s columns, across
    splits (photos.dataset_photos), since a face's position depends on faces of any split. Text-only
    samples (e.g. a search by gallery face id) are kept with `images: []`; a sample whose ref names no
    record of this split is counted in `skipped` instead of being written with a dangling ref.
    """
    from facevlm.data.photos import dataset_photos
    from facevlm.data.qa import QAConfig, qa_samples
    from facevlm.data.store import iter_records

    qa_cfg = qa_cfg if qa_cfg is not None else QAConfig()
    out.mkdir(parents=True, exist_ok=True)
    report = ExportReport()
    photos = dataset_photos(ds)  # every split: positions and face-free regions need all faces of a photo
    split_col = ds["split"]
    workers = cfg.workers if cfg.workers is not None else int(len(ds) >= 1000 and (os.cpu_count() or 1) > 1)
    backgrounds = Backgrounds(workers)
    try:
        for split in sorted({s or "all" for s in split_col}):
            if cfg.split is not None and split != cfg.split:
                continue
            part = ds.select([i for i, s in enumerate(split_col) if (s or "all") == split], keep_in_memory=True)
            writer = _ImageWriter(out, split, cfg, backgrounds)
            path = out / f"{split}.jsonl"
            with path.open("w", encoding="utf-8") as f:
                for sample in qa_samples(writer.stream(iter_records(part)), qa_cfg, photos=photos):
                    images: list[str] = []
                    missing: list[str] = []
                    linked = _link_images(sample, writer.resolve, images, missing)
                    if missing:
                        report.skipped[writer.problems.get(missing[0], UNRESOLVED)] += 1
                        continue
                    f.write(json.dumps({**linked, "images": images}) + "\n")
                    report.rows[split] += 1
            backgrounds.wait()
            report.files[split] = [str(path)]
    finally:
        backgrounds.close()
    return report
