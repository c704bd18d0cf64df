"""RAF-DB basic (Li, Deng & Du, CVPR 2017) as distributed under `basic/`.

- `EmoLabel/list_patition_label.txt` (sic; the README spells it `partition`): `train_00001.jpg 5`, labels
  1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger, 7 Neutral. Official splits: train, test.
- `Image/aligned/train_00001_aligned.jpg` (100x100, default) or `Image/original/train_00001.jpg`.
- optional `Annotation/manual/train_00001_manu_attri.txt`: 5 landmark lines `x<TAB>y` (original image
  pixels), then gender (0 male, 1 female, 2 unsure), race (0 Caucasian, 1 African-American, 2 Asian), age
  range (0: 0-3, 1: 4-19, 2: 20-39, 3: 40-69, 4: 70+). Gender maps to our vocabulary; race and age ranges
  do not match our categories and are kept in `meta` only; landmarks are used with original images.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from facevlm.data.adapters.base import Adapter, ImportSummary, check_split, split_ws, try_image
from facevlm.errors import DataError
from facevlm.schema import FaceRecord

EXPRESSIONS = {"1": "surprise", "2": "fear", "3": "disgust", "4": "happy", "5": "sad", "6": "anger", "7": "neutral"}
GENDERS = {"0": "masculine", "1": "feminine"}
RACES = {"0": "Caucasian", "1": "African-American", "2": "Asian"}
AGE_RANGES = {"0": "0-3", "1": "4-19", "2": "20-39", "3": "40-69", "4": "70+"}


class RAFDB(Adapter):
    name = "rafdb"
    title = "RAF-DB (basic)"
    licence = "RAF-DB: non-commercial research and educational use only (RAF-DB release agreement)"
    homepage = "http://www.whdeng.cn/RAF/model1.html"
    splits = ("train", "test")

    def __init__(self, root: str | Path, images: str = "aligned"):
        super().__init__(root)
        if (self.root / "basic").is_dir():
            self.root = self.root / "basic"
        if images not in ("aligned", "original"):
            raise DataError(f"rafdb: images must be 'aligned' or 'original', not {images!r}")
        self.images = images

    def records(self, split: str, summary: ImportSummary) -> Iterator[FaceRecord]:
        check_split(self, split)
        labels = self.find(
            "EmoLabel/list_patition_label.txt", "EmoLabel/list_partition_label.txt", what="emotion label list"
        )
        folder = self.find(f"Image/{self.images}", what=f"{self.images} image folder")
        manual = self.root / "Annotation" / "manual"
        with labels.open() as f:
            for n, line in enumerate(f, 1):
                parts = split_ws(line)
                if not parts:
                    continue
                where = f"{labels}:{n}"
                if len(parts) != 2 or parts[1] not in EXPRESSIONS or "." not in parts[0]:
                    summary.skip(where, "malformed line", line.strip()[:60])
                    continue
                file, label = parts
                if not file.startswith(split + "_"):
                    continue
                stem = file.rsplit(".", 1)[0]
                name = f"{stem}_aligned.jpg" if self.images == "aligned" else file
                image = try_image(folder / name, where, summary)
                if image is None:
                    continue
                record = self.record(file, image, split)
                record.set("expression", EXPRESSIONS[label])
                attri = manual / f"{stem}_manu_attri.txt"
                if attri.is_file():
                    self._manual(attri, record, summary)
                yield record

    def _manual(self, path: Path, record: FaceRecord, summary: ImportSummary) -> None:
        lines = [split_ws(x) for x in path.read_text().splitlines() if x.strip()]
        if len(lines) != 8 or any(len(p) != 2 for p in lines[:5]):
            summary.skip(str(path), "malformed manual annotation (kept the expression label)", f"{len(lines)} lines")
            return
        gender, race, age = (p[0] for p in lines[5:8])
        if gender in GENDERS:
            record.set("gender_presentation", GENDERS[gender])
        record.meta.update({"rafdb_race": RACES.get(race, race), "rafdb_age_range": AGE_RANGES.get(age, age)})
        if self.images == "original":
            record.landmarks = [[float(x), float(y)] for x, y in lines[:5]]
