"""CelebA (Liu et al., ICCV 2015) as distributed: `img_align_celeba/` (or `img_celeba/`) plus the text lists.

Formats (all whitespace-separated, first column the image file):
- `list_attr_celeba.txt`: line 1 the image count, line 2 the 40 attribute names, then `-1`/`1` values.
- `identity_CelebA.txt`: `000001.jpg 2880` (no header).
- `list_eval_partition.txt`: `000001.jpg 0` with 0 train, 1 val, 2 test (the official, identity-disjoint split).
- optional `list_landmarks_align_celeba.txt` (aligned images) / `list_landmarks_celeba.txt` and
  `list_bbox_celeba.txt` (in-the-wild images): a count line and a header line, then integers.
Files may sit at the root or under `Anno/` and `Eval/` (the Google Drive layout).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from facevlm.data.adapters.base import Adapter, ImportSummary, check_split, split_ws, try_image
from facevlm.errors import DataError
from facevlm.schema import CELEBA_ATTRIBUTES, FaceRecord

PARTITION = {"0": "train", "1": "val", "2": "test"}


class CelebA(Adapter):
    name = "celeba"
    title = "CelebA"
    licence = (
        "CelebA: non-commercial research and educational use only (CelebA dataset agreement, "
        "MMLAB CUHK); the authors do not own the image copyrights"
    )
    homepage = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"

    def __init__(self, root: str | Path, variant: str = "align"):
        super().__init__(root)
        if variant not in ("align", "wild"):
            raise DataError(
                f"celeba: variant must be 'align' (img_align_celeba) or 'wild' (img_celeba), not {variant!r}"
            )
        self.variant = variant

    def _list(self, name: str, required: bool = True) -> Path | None:
        for rel in (name, f"Anno/{name}", f"Eval/{name}"):
            if (self.root / rel).is_file():
                return self.root / rel
        if required:
            raise DataError(f"{self.root}: no {name} (looked in ., Anno/, Eval/); see data/cards/celeba.md")
        return None

    def records(self, split: str, summary: ImportSummary) -> Iterator[FaceRecord]:
        check_split(self, split)
        images = self.find("img_align_celeba" if self.variant == "align" else "img_celeba", what="image folder")
        if (images / images.name).is_dir():  # the zip unpacks to img_align_celeba/img_align_celeba/
            images = images / images.name
        wanted = _read_partition(self._list("list_eval_partition.txt"), split, summary)
        attrs = _read_table(self._list("list_attr_celeba.txt"), wanted, summary, header=True)
        identities = _read_table(self._list("identity_CelebA.txt", required=False), wanted, summary, header=False)
        lm_name = "list_landmarks_align_celeba.txt" if self.variant == "align" else "list_landmarks_celeba.txt"
        landmarks = _read_table(self._list(lm_name, required=False), wanted, summary, header=True)
        boxes = (
            _read_table(self._list("list_bbox_celeba.txt", required=False), wanted, summary, header=True)
            if self.variant == "wild"
            else {}
        )
        for file in sorted(wanted - attrs.keys()):
            summary.skip(f"{self._list('list_attr_celeba.txt')}", "no attribute line", file)
        for file, (where, values) in attrs.items():
            if len(values) != len(CELEBA_ATTRIBUTES):
                summary.skip(where, "wrong number of attribute columns", f"{len(values)} != 40")
                continue
            image = try_image(images / file, where, summary)
            if image is None:
                continue
            try:
                record = self.record(file, image, split)
                for attr, value in zip(CELEBA_ATTRIBUTES, values):
                    record.set(attr, value)
                if file in identities:
                    record.identity = f"celeba:{identities[file][1][0]}"
                if file in landmarks:
                    pts = [float(v) for v in landmarks[file][1]]
                    if len(pts) != 10:
                        raise ValueError(f"{landmarks[file][0]}: {len(pts)} landmark values, expected 10")
                    record.landmarks = [pts[i : i + 2] for i in range(0, 10, 2)]
                if file in boxes:
                    x, y, w, h = (float(v) for v in boxes[file][1])
                    record.box = [x, y, x + w, y + h]
            except (ValueError, IndexError) as exc:
                summary.skip(where, "bad value", str(exc))
                continue
            yield record


def _read_partition(path: Path, split: str, summary: ImportSummary) -> set[str]:
    wanted = set()
    with path.open() as f:
        for n, line in enumerate(f, 1):
            parts = split_ws(line)
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in PARTITION:
                summary.skip(f"{path}:{n}", "malformed line", line.strip()[:60])
                continue
            if PARTITION[parts[1]] == split:
                wanted.add(parts[0])
    return wanted


def _read_table(
    path: Path | None, wanted: set[str], summary: ImportSummary, header: bool
) -> dict[str, tuple[str, list[str]]]:
    """file -> (`path:line`, values) for the wanted files; `header` = a count line + a names line first.

    The attribute file's names line is checked against the 40 CelebA names so a re-ordered or edited
    file cannot silently shift every label by one column.
    """
    if path is None:
        return {}
    out: dict[str, tuple[str, list[str]]] = {}
    with path.open() as f:
        first = 1
        if header:
            count, names = f.readline(), split_ws(f.readline())
            if not count.strip().isdigit():
                raise DataError(f"{path}:1: expected the image count, found {count.strip()[:40]!r}")
            if path.name == "list_attr_celeba.txt" and tuple(names) != CELEBA_ATTRIBUTES:
                raise DataError(f"{path}:2: header is not the 40 CelebA attribute names in order")
            first = 3
        for n, line in enumerate(f, first):
            parts = split_ws(line)
            if not parts:
                continue
            if parts[0] in wanted:
                if len(parts) < 2:
                    summary.skip(f"{path}:{n}", "malformed line", line.strip()[:60])
                    continue
                out[parts[0]] = (f"{path}:{n}", parts[1:])
    return out
