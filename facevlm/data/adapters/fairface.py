"""FairFace (Kärkkäinen & Joo, WACV 2021) as distributed: label CSVs + the image zip folders.

`fairface_label_train.csv` / `fairface_label_val.csv` have the header `file,age,gender,race,service_test`;
`file` is relative to the image root (`train/1.jpg`), age is a bin (`0-2` ... `60-69`, `more than 70`),
gender `Male`/`Female`, race one of FairFace's seven categories. Images come from the
`fairface-img-margin025-trainval` (default) or `margin125` zip; point ROOT at the folder holding the CSVs
and, by default, the unpacked `train/` and `val/` folders (or pass `images=<dir>`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from facevlm.data.adapters.base import Adapter, ImportSummary, check_split, csv_rows, try_image
from facevlm.schema import AGE_GROUPS, RACES, FaceRecord

AGES = {**{g: g for g in AGE_GROUPS[:-1]}, "more than 70": "70+"}
GENDERS = {"Male": "masculine", "Female": "feminine"}


class FairFace(Adapter):
    name = "fairface"
    title = "FairFace"
    licence = "FairFace: CC BY 4.0 (Kärkkäinen & Joo); images collected from YFCC-100M and the web"
    homepage = "https://github.com/joojs/fairface"
    splits = ("train", "val")

    def __init__(self, root: str | Path, images: str = ""):
        super().__init__(root)
        self.images = Path(images).expanduser() if images else self.root

    def records(self, split: str, summary: ImportSummary) -> Iterator[FaceRecord]:
        check_split(self, split)
        labels = self.find(f"fairface_label_{split}.csv", what=f"label file for {split}")
        for where, row in csv_rows(labels, ("file", "age", "gender", "race"), summary):
            age, gender, race = row["age"].strip(), row["gender"].strip(), row["race"].strip()
            if age not in AGES or gender not in GENDERS or race not in RACES:
                summary.skip(where, "unknown label value", f"age={age!r} gender={gender!r} race={race!r}")
                continue
            image = try_image(self.images / row["file"], where, summary)
            if image is None:
                continue
            record = self.record(
                row["file"], image, split, meta={"service_test": row.get("service_test", "").strip() == "True"}
            )
            record.set("age_group", AGES[age])
            record.set("gender_presentation", GENDERS[gender])
            record.set("race", race)
            yield record
