"""User-supplied data in the two generic layouts: an image folder with class sub-folders, and JSONL.

imagefolder: `ROOT/<split>/<class>/*.jpg` (or `ROOT/<class>/*.jpg`, split `all`); the class name becomes
the identity (default) or the value of one attribute of our vocabulary (`label=expression`, ...), with the
usual expression folder names (`angry`, `happiness`, ...) accepted.

jsonl: one JSON object per line, `image` (a path relative to the JSONL file) plus any schema fields:
`id`, `identity`, `box`, `landmarks`, `attributes` (`{name: value}` or a list of `{name, value, origin,
prob, model}`), `captions` (or `caption`), `split`, `licence`, `meta`. Objects without `split` belong to
whichever split is imported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from facevlm.data.adapters.base import Adapter, ImportSummary, try_image
from facevlm.errors import DataError
from facevlm.schema import VOCABULARY, AttributeValue, FaceRecord, canonical_value

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
EXPRESSION_ALIASES = {
    "angry": "anger",
    "anger": "anger",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "happy": "happy",
    "happiness": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
}
USER_LICENCE = "unknown (user-supplied data; set licence=...)"


class ImageFolder(Adapter):
    name = "imagefolder"
    title = "image folder"
    licence = USER_LICENCE
    splits = ("train", "val", "test", "all")

    def __init__(self, root: str | Path, label: str = "identity", licence: str = "", source: str = ""):
        super().__init__(root)
        if label != "identity" and label not in VOCABULARY:
            raise DataError(f"imagefolder: label must be 'identity' or an attribute of the vocabulary, not {label!r}")
        self.label, self.licence = label, licence or USER_LICENCE
        self.source = source or self.name

    def records(self, split: str, summary: ImportSummary) -> Iterator[FaceRecord]:
        base = self.root / split if (self.root / split).is_dir() else self.root
        if base == self.root and split != "all" and any((self.root / s).is_dir() for s in self.splits):
            raise DataError(
                f"{self.root}: no {split}/ folder (split folders: "
                f"{', '.join(s for s in self.splits if (self.root / s).is_dir())})"
            )
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            value = self._value(folder.name)
            for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
                rel = path.relative_to(self.root).as_posix()
                if value is None:
                    summary.skip(rel, "unknown label value", f"{self.label}={folder.name!r}")
                    continue
                image = try_image(path, rel, summary)
                if image is None:
                    continue
                record = self.record(rel, image, split)
                record.source = self.source
                if self.label == "identity":
                    record.identity = folder.name
                else:
                    record.set(self.label, value)
                yield record

    def _value(self, name: str) -> str | None:
        if self.label == "identity":
            return name
        if self.label == "expression":
            name = EXPRESSION_ALIASES.get(name.lower(), name)
        try:
            return canonical_value(self.label, name)
        except ValueError:
            return None


class JSONL(Adapter):
    name = "jsonl"
    title = "JSONL records"
    licence = USER_LICENCE
    splits = ("train", "val", "test", "all")

    def __init__(self, root: str | Path, licence: str = "", source: str = ""):
        super().__init__(root)
        if not self.root.is_file():
            raise DataError(f"{self.root}: the jsonl adapter reads one .jsonl file")
        self.licence, self.source = licence or USER_LICENCE, source or self.name

    def records(self, split: str, summary: ImportSummary) -> Iterator[FaceRecord]:
        with self.root.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{self.root}:{n}"
                try:
                    obj = json.loads(line)
                    if not isinstance(obj, dict) or not isinstance(obj.get("image"), str):
                        raise ValueError("each line must be an object with an 'image' path")
                except ValueError as exc:
                    summary.skip(where, "malformed line", str(exc)[:80])
                    continue
                if split != "all" and obj.get("split", split) != split:
                    continue
                image = try_image(self.root.parent / obj["image"], where, summary)
                if image is None:
                    continue
                try:
                    yield self._record(obj, image, split, n)
                except (ValueError, TypeError, KeyError) as exc:
                    summary.skip(where, "bad value", str(exc)[:120])

    def _record(self, obj: dict[str, Any], image: dict[str, Any], split: str, n: int) -> FaceRecord:
        record = self.record(
            str(obj.get("id") or f"{self.root.stem}/{n}"),
            image,
            obj.get("split") or split,
            box=[float(v) for v in obj["box"]] if obj.get("box") else None,
            landmarks=[[float(x), float(y)] for x, y in obj.get("landmarks") or []],
            identity=obj.get("identity"),
            meta=dict(obj.get("meta") or {}),
        )
        if record.box is not None and len(record.box) != 4:
            raise ValueError(f"box must have 4 numbers, got {len(record.box)}")
        record.source = obj.get("source") or self.source
        record.licence = obj.get("licence") or self.licence
        attributes = obj.get("attributes") or {}
        if isinstance(attributes, dict):
            record.attributes = [AttributeValue(k, v) for k, v in attributes.items()]
        else:
            record.attributes = [AttributeValue(**a) for a in attributes]
        captions = obj.get("captions", obj.get("caption", []))
        record.captions = [captions] if isinstance(captions, str) else list(captions)
        return record
