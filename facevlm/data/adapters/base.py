"""What every dataset adapter shares: the adapter contract, the import summary, and safe file reading.

Real datasets are messy (truncated JPEGs, short CSV rows, files renamed by hand). An adapter never stops
on one bad item: it logs a one-line `file:line: problem` warning, counts the skip by reason in an
`ImportSummary`, and goes on, so a 200k-image import is not lost to one corrupt file. Problems that make a
whole file unusable (it is missing, its header lacks a required column) raise `DataError` at once.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from facevlm.errors import DataError, FacevlmError
from facevlm.image import open_image
from facevlm.schema import FaceRecord

log = logging.getLogger("facevlm.data.adapters")

MAX_EXAMPLES = 20  # skip messages kept verbatim in the summary; the rest are only counted


@dataclass
class ImportSummary:
    """Counts of what an import loaded and skipped (by reason), with the first few skip messages."""

    source: str
    split: str
    loaded: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    strict: bool = False

    def skip(self, where: str, reason: str, detail: str = "") -> None:
        """Record one skipped item. `where` is `file` or `file:line`; `reason` is a short counter key."""
        message = f"{where}: {reason}" + (f" ({detail})" if detail else "")
        if self.strict:
            raise DataError(message)
        self.skipped[reason] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(message)
        log.warning(message)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def lines(self) -> list[str]:
        """A short human-readable report (the CLI prints it)."""
        out = [f"{self.source} [{self.split}]: loaded {self.loaded}, skipped {self.n_skipped}"]
        out += [f"  skipped {n:>7} x {reason}" for reason, n in self.skipped.most_common()]
        out += [f"  e.g. {m}" for m in self.examples[:5]]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "split": self.split,
            "loaded": self.loaded,
            "skipped": dict(self.skipped),
            "examples": list(self.examples),
        }


class Adapter:
    """Reads one dataset, as its authors distribute it, into FaceRecords.

    Subclasses set the class attributes and implement `records`. Options (`--option key=value` on the
    CLI) are the keyword arguments of the subclass `__init__`; unknown ones are an error.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    licence: str  # the licence text copied into every record (user-set for imagefolder/jsonl)
    homepage: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise FacevlmError(f"{self.root}: no such file or directory (the {self.title} root)")

    def records(self, split: str, summary: ImportSummary) -> Iterator[FaceRecord]:
        raise NotImplementedError

    # helpers shared by the adapters ---------------------------------------------------------------
    def find(self, *candidates: str, what: str = "") -> Path:
        """The first existing path among `candidates` (relative to the root), or a DataError naming them."""
        for rel in candidates:
            path = self.root / rel
            if path.exists():
                return path
        raise DataError(
            f"{self.root}: no {what or candidates[0]} (looked for {', '.join(candidates)}); "
            f"{self.title} must be laid out as distributed, see data/cards/{self.name}.md"
        )

    def record(self, key: str, image: Any, split: str, **fields: Any) -> FaceRecord:
        """A FaceRecord with this adapter's source, licence and id conventions (`<source>/<key>`)."""
        rid = f"{self.name}/{key}"
        return FaceRecord(
            id=rid,
            image=image,
            source=self.name,
            licence=self.licence,
            image_key=fields.pop("image_key", rid),
            split=split,
            **fields,
        )


def check_split(adapter: Adapter, split: str) -> None:
    if split not in adapter.splits:
        raise FacevlmError(f"{adapter.title} has no split {split!r}; it has {', '.join(adapter.splits)}")


def _decode(data: bytes) -> None:
    open_image(data)  # a full decode: `Image.verify` alone misses truncated JPEGs


def load_image(path: Path) -> dict[str, Any]:
    """The file's original bytes (no re-encoding) once a full decode proves it is a readable image."""
    try:
        data = path.read_bytes()
        _decode(data)
    except FileNotFoundError:
        raise DataError(f"{path}: image file missing") from None
    except Exception as exc:  # PIL raises many types for bad files
        raise DataError(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from None
    return {"bytes": data, "path": path.name}


def try_image(path: Path, where: str, summary: ImportSummary) -> dict[str, Any] | None:
    """The image as `load_image` returns it, or None after a counted skip (missing / corrupt image)."""
    if not path.is_file():
        summary.skip(where, "image file missing", str(path))
        return None
    data = path.read_bytes()
    try:
        _decode(data)
    except Exception as exc:  # PIL raises many types for bad files
        summary.skip(where, "corrupt image", f"{path.name}: {type(exc).__name__}: {exc}")
        return None
    return {"bytes": data, "path": path.name}


def pil_to_image(img: Any, fmt: str = "PNG") -> dict[str, Any]:
    """Encode an in-memory PIL image (e.g. FER2013's pixel strings) for the `datasets` Image feature."""
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return {"bytes": buf.getvalue(), "path": None}


def split_ws(line: str) -> list[str]:
    """Whitespace split used by the CelebA/LFW/RAF-DB text lists (columns are padded with spaces)."""
    return line.split()


def csv_rows(
    path: Path, required: tuple[str, ...], summary: ImportSummary, default_header: tuple[str, ...] | None = None
) -> Iterator[tuple[str, dict[str, str]]]:
    """(`path:line`, row) for each well-formed CSV row; short or long rows are counted skips.

    A header without a required column raises DataError at `path:1`. `default_header` is for files that
    are distributed both with and without a header line (AffectNet's validation.csv): when the first line
    does not name the required columns, those default names are used and line 1 is data.
    """
    import csv

    with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: tolerate a BOM from spreadsheet tools
        first = f.readline()
        names = next(csv.reader([first]), [])
        names = [n.strip() for n in names]
        if default_header and not set(required) <= set(names):
            names, f_lines, start = list(default_header), _chain([first], f), 1
        else:
            f_lines, start = f, 2
        missing = [c for c in required if c not in names]
        if missing:
            raise DataError(f"{path}:1: missing column(s) {', '.join(missing)} in header {','.join(names)[:120]}")
        for n, values in enumerate(csv.reader(f_lines), start):
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(names):
                summary.skip(f"{path}:{n}", "malformed line", f"{len(values)} fields, header has {len(names)}")
                continue
            yield f"{path}:{n}", dict(zip(names, values))


def _chain(head: list[str], rest: Any) -> Iterator[str]:
    yield from head
    yield from rest
