"""The real sample photos and videos of the `samples` asset (see `facevlm assets fetch`).

`samples.json` lists `{file, source_package, licence, kind: image|video, labels: {identity?, expression?}}`.
Photos become one whole-image record each and videos `frames_per_video` evenly spaced frames; the detect
step then finds the faces. A sample's labels describe its one subject, so they are kept in
`meta["sample_labels"]` and applied by `apply_sample_labels` only to records that hold a single face.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from facevlm.data.adapters.base import Adapter, ImportSummary, check_split, try_image
from facevlm.errors import DataError
from facevlm.schema import FaceRecord


def samples_root() -> Path:
    from facevlm.assets import path

    return path("samples")


class Samples(Adapter):
    name = "samples"
    title = "sample photos and videos"
    licence = "per file (see samples.json)"
    splits = ("all",)

    def __init__(self, root: str | Path | None = None, frames_per_video: int | str = 8):
        super().__init__(root if root not in (None, "") else samples_root())
        self.frames_per_video = int(frames_per_video)
        if self.frames_per_video < 1:
            raise DataError(f"samples: frames_per_video must be >= 1, not {self.frames_per_video}")

    def records(self, split: str, summary: ImportSummary) -> Iterator[FaceRecord]:
        check_split(self, split)
        index = self.find("samples.json")
        try:
            entries = json.loads(index.read_text())
        except ValueError as exc:
            raise DataError(f"{index}: invalid JSON ({exc})") from None
        for i, entry in enumerate(entries):
            where = f"{index}:entry {i}"
            if not isinstance(entry, dict) or "file" not in entry or entry.get("kind") not in ("image", "video"):
                summary.skip(where, "malformed entry", str(entry)[:80])
                continue
            meta = {
                "source_package": entry.get("source_package", ""),
                "kind": entry["kind"],
                "sample_labels": entry.get("labels") or {},
            }
            licence = entry.get("licence") or "unknown"
            path = self.root / entry["file"]
            if entry["kind"] == "image":
                image = try_image(path, where, summary)
                if image is not None:
                    yield self._record(entry["file"], image, licence, meta)
                continue
            for frame_no, image in video_frames(path, self.frames_per_video, where, summary):
                key = f"{entry['file']}#{frame_no}"
                yield self._record(
                    key, image, licence, {**meta, "frame": frame_no}, image_key=f"samples/{entry['file']}"
                )

    def _record(self, key: str, image: dict[str, Any], licence: str, meta: dict[str, Any], **kw: Any) -> FaceRecord:
        record = self.record(key, image, "all", meta=meta, **kw)
        record.licence = licence
        return record


def video_frames(path: Path, n: int, where: str, summary: ImportSummary) -> Iterator[tuple[int, dict[str, Any]]]:
    """`n` evenly spaced frames of a video as JPEG bytes (OpenCV decodes; frames are BGR)."""
    import cv2
    from PIL import Image

    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    if total <= 0:
        cap.release()
        summary.skip(where, "unreadable video", str(path))
        return
    try:
        for idx in sorted({round(k * (total - 1) / max(n - 1, 1)) for k in range(min(n, total))}):
            cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
            ok, frame = cap.read()
            if not ok:
                summary.skip(f"{where} frame {idx}", "unreadable video frame")
                continue
            buf = io.BytesIO()
            Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).save(buf, format="JPEG", quality=95)
            yield idx, {"bytes": buf.getvalue(), "path": None}
    finally:
        cap.release()


def apply_sample_labels(record: FaceRecord) -> FaceRecord:
    """Copy a sample's identity/expression onto the record when it is the photo's only face."""
    labels = record.meta.get("sample_labels") or {}
    if record.n_faces == 1:
        if labels.get("identity"):
            record.identity = f"samples:{labels['identity']}"
        if labels.get("expression"):
            record.set("expression", labels["expression"])
    return record
