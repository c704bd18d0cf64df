"""AffectNet (Mollahosseini et al., 2017), manually annotated part, as distributed.

`Manually_Annotated_file_lists/training.csv` and `validation.csv` (also accepted at the root) with columns
`subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal`;
some copies of validation.csv ship without the header line, which is detected. Images are under
`Manually_Annotated_Images/<subDirectory_filePath>`. `facial_landmarks` is 68 `x;y;...` values (iBUG
order), reduced here to our 5 points. Expression: 0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust,
6 Anger, 7 Contempt, 8 None, 9 Uncertain, 10 Non-Face; contempt (not in our vocabulary) and 8-10 are
skipped and counted. There is no public test set: papers report on `validation.csv` (our `val`).
"""

from __future__ import annotations

from collections.abc import Iterator

from facevlm.data.adapters.base import Adapter, ImportSummary, check_split, csv_rows, try_image
from facevlm.schema import FaceRecord

COLUMNS = (
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
)
EXPRESSIONS = {"0": "neutral", "1": "happy", "2": "sad", "3": "surprise", "4": "fear", "5": "disgust", "6": "anger"}
SKIPPED = {
    "7": "contempt (not in our vocabulary)",
    "8": "expression none",
    "9": "expression uncertain",
    "10": "non-face",
}
FILES = {"train": "training.csv", "val": "validation.csv"}


class AffectNet(Adapter):
    name = "affectnet"
    title = "AffectNet"
    licence = (
        "AffectNet: academic research use only under the AffectNet license agreement (University of "
        "Denver); no redistribution"
    )
    homepage = "http://mohammadmahoor.com/affectnet/"
    splits = ("train", "val")

    def records(self, split: str, summary: ImportSummary) -> Iterator[FaceRecord]:
        check_split(self, split)
        labels = self.find(f"Manually_Annotated_file_lists/{FILES[split]}", FILES[split], what=f"{FILES[split]}")
        images = self.find(
            "Manually_Annotated_Images",
            "Manually_Annotated/Manually_Annotated_Images",
            what="Manually_Annotated_Images folder",
        )
        for where, row in csv_rows(labels, COLUMNS, summary, default_header=COLUMNS):
            label = row["expression"].strip()
            if label in SKIPPED:
                summary.skip(where, SKIPPED[label])
                continue
            if label not in EXPRESSIONS:
                summary.skip(where, "unknown label value", f"expression={label!r}")
                continue
            try:
                x, y, w, h = (float(row[k]) for k in ("face_x", "face_y", "face_width", "face_height"))
                points = five_points([float(v) for v in row["facial_landmarks"].split(";") if v.strip()])
                valence, arousal = float(row["valence"]), float(row["arousal"])
            except ValueError as exc:
                summary.skip(where, "bad value", str(exc))
                continue
            image = try_image(images / row["subDirectory_filePath"], where, summary)
            if image is None:
                continue
            record = self.record(
                row["subDirectory_filePath"],
                image,
                split,
                box=[x, y, x + w, y + h],
                landmarks=points,
                meta={"valence": valence, "arousal": arousal},
            )
            record.set("expression", EXPRESSIONS[label])
            yield record


def five_points(values: list[float]) -> list[list[float]]:
    """Our 5 landmarks (image-left eye, image-right eye, nose tip, left and right mouth corner) from iBUG-68."""
    if len(values) != 136:
        raise ValueError(f"{len(values)} landmark values, expected 136")
    pts = [values[i : i + 2] for i in range(0, 136, 2)]

    def mean(idx: range) -> list[float]:
        return [sum(pts[i][0] for i in idx) / len(idx), sum(pts[i][1] for i in idx) / len(idx)]

    return [mean(range(36, 42)), mean(range(42, 48)), pts[30], pts[48], pts[54]]
