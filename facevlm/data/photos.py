"""The faces of one photo, as QA sampling needs them: where each face is, and where no face is.

qa.py streams one record (one face) at a time, but two kinds of question need the other faces of the
record's photo (records of one photo share `image_key`): referring to faces by position ("the person on
the left") needs every face's box, and a face-free crop of a real photo must stay clear of every box.
`photo_index` gathers those once, from the dataset's light columns (no image is decoded), for multi-face
photos only, so its memory is a few hundred bytes per face of a group photo. A photo whose records do not
cover all its faces (`n_faces` counts faces the detector dropped, or labellers skipped) is left out of
position questions and face-free crops: an unknown face could sit anywhere.

Positions are by box centre, left to right as the viewer sees the photo: "left / right" for two faces,
"left / middle / right" for three, "first ... fourth from the left" for four. A face is given a position
only when every other face's centre is at least `MIN_SEPARATION` face widths away horizontally; faces
stacked in a column or overlapping in x are too close to order reliably.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from facevlm.schema import AttributeValue, FaceRecord

MIN_SEPARATION = 0.5  # centres closer than this many face widths (of the wider face) are not ordered
POSITIONS = {
    2: ("person on the left", "person on the right"),
    3: ("person on the left", "person in the middle", "person on the right"),
    4: (
        "first person from the left",
        "second person from the left",
        "third person from the left",
        "fourth person from the left",
    ),
}
CLEAR_MARGIN = 0.5  # a face-free crop keeps this many face sizes away from every box (hair, ears, shoulders)
MIN_CROP = 64  # pixels: the smallest face-free crop side (also at least a quarter of the photo's shorter side)


@dataclass(frozen=True)
class PhotoFace:
    """One face of a multi-face photo: its record id, split, box and labels (for "which person ...?")."""

    id: str
    split: str
    box: tuple[float, float, float, float]
    attributes: tuple[AttributeValue, ...] = field(default=(), compare=False)


def _row(row: Any) -> tuple[str, str, int, Sequence[float] | None, str, list[AttributeValue]]:
    if isinstance(row, FaceRecord):
        return row.id, row.image_key or row.id, row.n_faces, row.box, row.split, list(row.attributes)
    attrs = [AttributeValue(**a) if isinstance(a, Mapping) else a for a in row.get("attributes") or []]
    key = row.get("image_key") or row["id"]
    return row["id"], key, int(row.get("n_faces", 1)), row.get("box"), row.get("split", ""), attrs


def photo_index(rows: Iterable[Any]) -> dict[str, list[PhotoFace]]:
    """image_key -> its faces left to right, for photos whose records cover all `n_faces` (>= 2) faces
    with a box.

    `rows` are FaceRecords or stored-dataset rows (dicts); labels are kept only for photos of 2-4 faces,
    the only ones asked about by position."""
    faces: dict[str, list[PhotoFace]] = {}
    expected: dict[str, int] = {}
    for row in rows:
        rid, key, n, box, split, attrs = _row(row)
        if n < 2:
            continue
        expected[key] = n
        if box is None or len(box) != 4:
            expected[key] = -1  # a face without a box: nowhere to place it
            continue
        keep = tuple(attrs) if n <= max(POSITIONS) else ()
        faces.setdefault(key, []).append(PhotoFace(rid, split, tuple(float(v) for v in box), keep))
    # left to right (then by id): the same photo gives the same list in any record order
    return {k: sorted(v, key=lambda f: (_centre(f.box), f.id)) for k, v in faces.items() if len(v) == expected[k]}


def dataset_photos(ds: Any) -> dict[str, list[PhotoFace]]:
    """`photo_index` of a stored dataset (a `datasets.Dataset`), read from its columns without images."""
    columns = ["id", "image_key", "n_faces", "box", "split", "attributes"]
    if "n_faces" not in ds.column_names:
        return {}
    multi = [i for i, n in enumerate(ds["n_faces"]) if n >= 2]
    if not multi:
        return {}
    return photo_index(ds.select(multi, keep_in_memory=True).select_columns(columns))


def _centre(box: Sequence[float]) -> float:
    return (box[0] + box[2]) / 2


def positions(boxes: Sequence[Sequence[float]]) -> list[str | None]:
    """Per box, its position phrase ("person on the left"), or None where it cannot be ordered reliably
    (or the photo has fewer than 2 or more than 4 faces)."""
    names = POSITIONS.get(len(boxes))
    if names is None:
        return [None] * len(boxes)
    out: list[str | None] = []
    for i, box in enumerate(boxes):
        clear = all(
            abs(_centre(box) - _centre(other)) >= MIN_SEPARATION * max(box[2] - box[0], other[2] - other[0])
            for j, other in enumerate(boxes)
            if j != i
        )
        rank = sum(_centre(other) < _centre(box) for j, other in enumerate(boxes) if j != i)
        out.append(names[rank] if clear else None)
    return out


def face_free_box(size: tuple[int, int], boxes: Sequence[Sequence[float]]) -> tuple[int, int, int, int] | None:
    """The largest square of the photo (w, h) that stays `CLEAR_MARGIN` face sizes away from every face
    box (ties: the first in scan order, so it is deterministic), or None when no square of at least
    `MIN_CROP` pixels and a quarter of the shorter side fits."""
    w, h = size
    keep_out = []
    for x0, y0, x1, y1 in boxes:
        m = CLEAR_MARGIN * max(x1 - x0, y1 - y0)
        keep_out.append((x0 - m, y0 - m, x1 + m, y1 + m))
    smallest = max(MIN_CROP, min(w, h) / 4)
    side = float(min(w, h))
    while side >= smallest:
        s = int(side)
        step = max(1, s // 8)
        for y in sorted({*range(0, h - s + 1, step), h - s}):
            for x in sorted({*range(0, w - s + 1, step), w - s}):
                if all(x >= b[2] or x + s <= b[0] or y >= b[3] or y + s <= b[1] for b in keep_out):
                    return x, y, x + s, y + s
        side *= 0.85
    return None
