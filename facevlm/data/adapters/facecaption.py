"""FaceCaption-15M (Dai et al., 2024): caption parquet files read through `datasets`, images kept locally.

The Hub release (`OpenFace-CQUPT/FaceCaption-15M`, `FaceCaption-v2.parquet`) holds no pixels, only one row
per face: `_id`, `url` (the LAION-Face source), `box` (a JSON string `[x1, y1, x2, y2]` in source-image
pixels), `caption` (a one-element list with the face caption; v1 files call it `face_caption`) and
`laion_caption` (the original alt text). Images are obtained separately under the LAION-Face agreement
(or the authors' image release) and looked up as `<images>/<_id>.{jpg,jpeg,png,webp}`; a parquet that
embeds an `image` column is used directly. Rows whose image is not available locally are skipped and
counted, never fetched: imports run offline.
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

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


class FaceCaption15M(Adapter):
    name = "facecaption15m"
    title = "FaceCaption-15M"
    licence = (
        "FaceCaption-15M: annotations CC BY 4.0 (OpenFace-CQUPT); images from LAION-Face, owned by "
        "their copyright holders, research use under the LAION-Face agreement"
    )
    homepage = "https://huggingface.co/datasets/OpenFace-CQUPT/FaceCaption-15M"
    splits = ("train",)

    def __init__(self, root: str | Path, images: str = ""):
        super().__init__(root)
        base = self.root if self.root.is_dir() else self.root.parent
        self.images = Path(images).expanduser() if images else base / "images"

    def records(self, split: str, summary: ImportSummary) -> Iterator[FaceRecord]:
        from datasets import load_dataset

        check_split(self, split)
        files = [self.root] if self.root.is_file() else sorted(self.root.rglob("*.parquet"))
        if not files:
            raise DataError(f"{self.root}: no *.parquet files (FaceCaption-v2.parquet or its shards)")
        for file in files:
            rows = load_dataset("parquet", data_files=str(file), split="train", streaming=True)
            columns = set(rows.features or {})
            caption_col = "caption" if "caption" in columns else "face_caption"
            missing = [c for c in ("_id", "box", caption_col) if c not in columns]
            if missing:
                raise DataError(f"{file}: missing column(s) {', '.join(missing)}; has {', '.join(sorted(columns))}")
            for n, row in enumerate(rows):
                where = f"{file}:row {n}"
                record = self._record(row, caption_col, where, split, summary)
                if record is not None:
                    yield record

    def _record(
        self, row: dict[str, Any], caption_col: str, where: str, split: str, summary: ImportSummary
    ) -> FaceRecord | None:
        try:
            box = [float(v) for v in json.loads(row["box"])] if isinstance(row["box"], str) else list(row["box"])
            if len(box) != 4 or box[0] >= box[2] or box[1] >= box[3]:
                raise ValueError(f"box {row['box']!r} is not [x1, y1, x2, y2]")
        except (TypeError, ValueError) as exc:
            summary.skip(where, "bad box", str(exc))
            return None
        captions = _texts(row[caption_col])
        if not captions:
            summary.skip(where, "empty caption")
            return None
        image = self._image(row, where, summary)
        if image is None:
            return None
        return self.record(
            str(row["_id"]),
            image,
            split,
            box=box,
            captions=captions,
            meta={"url": row.get("url") or "", "laion_caption": " ".join(_texts(row.get("laion_caption")))},
        )

    def _image(self, row: dict[str, Any], where: str, summary: ImportSummary) -> dict[str, Any] | None:
        embedded = row.get("image")
        if embedded is not None:  # decoded by `datasets` into a PIL image
            buf = io.BytesIO()
            embedded.save(buf, format=embedded.format or "PNG")
            return {"bytes": buf.getvalue(), "path": None}
        for ext in EXTENSIONS:
            path = self.images / f"{row['_id']}{ext}"
            if path.is_file():
                return try_image(path, where, summary)
        summary.skip(where, "image not downloaded", f"no {self.images}/{row['_id']}.*")
        return None


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [str(v).strip() for v in items if v is not None and str(v).strip()]
