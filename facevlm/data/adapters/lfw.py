"""LFW (Huang et al., 2007) as distributed: `lfw/` (or `lfw-deepfunneled/`, `lfw_funneled/`) + the view files.

Images: `<images>/<Name>/<Name>_0001.jpg` (250x250, face roughly centred). View files (tab-separated):
- `peopleDevTrain.txt` / `peopleDevTest.txt` (View 1): a count line, then `Name<TAB>n_images`.
- `people.txt` (View 2): the fold count, then per fold a count line and `Name<TAB>n_images` lines.
- `pairs.txt`: `10<TAB>300`, then per fold 300 matched `Name<TAB>i<TAB>j` and 300 mismatched
  `Name1<TAB>i<TAB>Name2<TAB>j`; `pairsDevTrain.txt`/`pairsDevTest.txt`: a count line, n matched, n mismatched.
Splits: train = peopleDevTrain, test = peopleDevTest, all = people.txt (fold kept in `meta`). Pairs are a
verification protocol, not records: `read_pairs` returns them for the benchmark harness.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from facevlm.data.adapters.base import Adapter, ImportSummary, check_split, try_image
from facevlm.errors import DataError
from facevlm.schema import FaceRecord

PEOPLE = {"train": "peopleDevTrain.txt", "test": "peopleDevTest.txt", "all": "people.txt"}
IMAGE_DIRS = ("lfw-deepfunneled", "lfw_funneled", "lfw-funneled", "lfw")


@dataclass(frozen=True)
class LFWPair:
    name1: str
    index1: int
    name2: str
    index2: int
    fold: int

    @property
    def same(self) -> bool:
        return self.name1 == self.name2


def image_path(images: Path, name: str, index: int) -> Path:
    return images / name / f"{name}_{index:04d}.jpg"


class LFW(Adapter):
    name = "lfw"
    title = "LFW"
    licence = (
        "LFW: released for research by UMass Amherst without an explicit licence; images are news "
        "photographs owned by their copyright holders"
    )
    homepage = "http://vis-www.cs.umass.edu/lfw/"
    splits = ("train", "test", "all")

    def __init__(self, root: str | Path, images: str = ""):
        super().__init__(root)
        folder = self.root / images if images else self.find(*IMAGE_DIRS, what="LFW image folder")
        if (folder / folder.name).is_dir():  # Kaggle mirror: lfw-deepfunneled/lfw-deepfunneled/
            folder = folder / folder.name
        self.images = folder

    def records(self, split: str, summary: ImportSummary) -> Iterator[FaceRecord]:
        check_split(self, split)
        people = self.find(PEOPLE[split], f"lfw/{PEOPLE[split]}", what=PEOPLE[split])
        for where, name, count, fold in read_people(people, folds=split == "all", summary=summary):
            for index in range(1, count + 1):
                path = image_path(self.images, name, index)
                image = try_image(path, where, summary)
                if image is None:
                    continue
                meta = {"fold": fold} if fold is not None else {}
                yield self.record(f"{name}/{path.name}", image, split, identity=f"lfw:{name}", meta=meta)


def read_people(path: Path, folds: bool, summary: ImportSummary) -> Iterator[tuple[str, str, int, int | None]]:
    """(`path:line`, name, n_images, fold) from a people file; `folds` = the View 2 layout (people.txt)."""
    lines = path.read_text().splitlines()
    n_folds = _int(lines, 0, path) if folds else 1
    pos = 1 if folds else 0
    for fold in range(n_folds):
        n = _int(lines, pos, path)
        for i in range(pos + 1, pos + 1 + n):
            parts = lines[i].strip().split("\t") if i < len(lines) else []
            if len(parts) != 2 or not parts[1].isdigit():
                summary.skip(f"{path}:{i + 1}", "malformed line", lines[i].strip()[:60] if i < len(lines) else "EOF")
                continue
            yield f"{path}:{i + 1}", parts[0], int(parts[1]), fold if folds else None
        pos += n + 1


def read_pairs(path: str | Path) -> list[LFWPair]:
    """The verification pairs of `pairs.txt` (10 folds) or `pairsDevTrain/Test.txt` (one fold)."""
    path = Path(path)
    lines = path.read_text().splitlines()
    head = lines[0].split("\t") if lines else []
    if len(head) == 2:
        n_folds, n_pairs = int(head[0]), int(head[1])
    elif len(head) == 1 and head[0].strip().isdigit():
        n_folds, n_pairs = 1, int(head[0])
    else:
        raise DataError(f"{path}:1: expected 'folds<TAB>pairs' or a pair count")
    pairs, pos = [], 1
    for fold in range(n_folds):
        for k in range(2 * n_pairs):
            if pos >= len(lines):
                raise DataError(f"{path}:{pos + 1}: file ends early ({n_folds} folds of {n_pairs} pairs expected)")
            parts = lines[pos].strip().split("\t")
            matched = k < n_pairs
            try:
                if matched and len(parts) == 3:
                    pairs.append(LFWPair(parts[0], int(parts[1]), parts[0], int(parts[2]), fold))
                elif not matched and len(parts) == 4:
                    pairs.append(LFWPair(parts[0], int(parts[1]), parts[2], int(parts[3]), fold))
                else:
                    raise ValueError(f"{len(parts)} fields")
            except ValueError as exc:
                raise DataError(
                    f"{path}:{pos + 1}: malformed {'matched' if matched else 'mismatched'} pair ({exc})"
                ) from None
            pos += 1
    return pairs


def _int(lines: list[str], i: int, path: Path) -> int:
    try:
        return int(lines[i].strip().split("\t")[0])
    except (IndexError, ValueError):
        raise DataError(f"{path}:{i + 1}: expected a count line") from None
