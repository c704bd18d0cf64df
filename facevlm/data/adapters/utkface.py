"""UTKFace (Zhang, Song & Qi, CVPR 2017): labels live in the file names.

`[age]_[gender]_[race]_[date&time].jpg` (aligned & cropped faces add `.chip.jpg`): age 0-116, gender 0 male
/ 1 female, race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others. A handful of distributed files miss a
field (e.g. `39_1_20170116174525125.jpg.chip.jpg`); they are skipped and counted. UTKFace has no official
split, so the only split is `all` (run `facevlm data split` for identity-free random splits).

UTKFace's "Asian" and "Others" have no faithful FairFace counterpart (FairFace splits Asian into East and
Southeast Asian), so for them the `race` attribute is left unset and the original label kept in `meta`.
"""

from __future__ import annotations

from collections.abc import Iterator

from facevlm.data.adapters.base import Adapter, ImportSummary, check_split, try_image
from facevlm.schema import FaceRecord, age_to_group

UTK_RACES = ("White", "Black", "Asian", "Indian", "Others")
TO_FAIRFACE = {"White": "White", "Black": "Black", "Indian": "Indian"}
GENDERS = {"0": "masculine", "1": "feminine"}
SUFFIXES = (".jpg.chip.jpg", ".chip.jpg", ".jpg", ".png")


class UTKFace(Adapter):
    name = "utkface"
    title = "UTKFace"
    licence = "UTKFace: non-commercial research purposes only; image copyrights belong to the original owners"
    homepage = "https://susanqq.github.io/UTKFace/"
    splits = ("all",)

    def records(self, split: str, summary: ImportSummary) -> Iterator[FaceRecord]:
        check_split(self, split)
        files = sorted(p for p in self.root.rglob("*") if p.is_file() and p.name.lower().endswith((".jpg", ".png")))
        if not files:
            self.find("UTKFace", what="UTKFace images (*.jpg named age_gender_race_date)")
        for path in files:
            rel = path.relative_to(self.root).as_posix()
            labels = parse_name(path.name)
            if labels is None:
                summary.skip(rel, "malformed file name", "expected age_gender_race_datetime.jpg")
                continue
            age, gender, race = labels
            image = try_image(path, rel, summary)
            if image is None:
                continue
            record = self.record(rel, image, split, meta={"utkface_race": race})
            record.set("age", age)
            record.set("age_group", age_to_group(age))
            record.set("gender_presentation", GENDERS[gender])
            if race in TO_FAIRFACE:
                record.set("race", TO_FAIRFACE[race])
            yield record


def parse_name(name: str) -> tuple[int, str, str] | None:
    """(age, gender code, UTK race name) from a UTKFace file name, or None if a field is missing/invalid."""
    stem = next((name[: -len(s)] for s in SUFFIXES if name.lower().endswith(s)), name)
    parts = stem.split("_")
    if len(parts) != 4 or not all(parts):
        return None
    age, gender, race, _ = parts
    if not age.isdigit() or not 0 <= int(age) <= 120 or gender not in GENDERS:
        return None
    if not race.isdigit() or int(race) >= len(UTK_RACES):
        return None
    return int(age), gender, UTK_RACES[int(race)]
