"""Exports of a stored face dataset for the trainers that consume it.

- `csv`: open_clip_train's CsvDataset input: columns `filepath` (absolute path of a written face crop) and
  `title`, tab-separated by default because that is open_clip_train's `--csv-separator` default. With
  `rows=caption` (default) every caption is its own row, so CLIP sees each caption as a positive;
  `rows=image` writes one row per image with its first caption.
- `wds`: webdataset tar shards (`<split>-000000.tar`, ...) of `NNNNNN.jpg` + `.txt` (first caption, what
  open_clip's `--dataset-type webdataset` reads) + `.json` (id, source, licence, identity, attributes, all
  captions), `samples_per_shard` samples per shard.
- `chat`: JSONL chat samples for VLM SFT from `facevlm.data.qa.qa_samples`; image parts are rewritten to
  paths relative to the output folder, also listed in `images`: a bare record id becomes that face's
  crop, `full:<record id>` the whole source photo, uncropped (face counting and positions need every face
  in view), `bg:<record id>` and `nofacecrop:<box>:<record id>` a face-free image (facevlm.data.noface:
  the synthetic renderer's background, a face-free square of the photo). Face-free crops are checked with
  the shipped face detector (`check_noface`); one where it finds a face is dropped and counted.
  Samples with no image part (a search by gallery face id) are kept, with `images: []`.
For CLIP_benchmark's `wds/<name>` reader (`<split>/0.tar`, `nshards.txt`, `dataset_type.txt`, class names
and templates) use `facevlm eval export` (facevlm/eval/clip_benchmark.py): its classification files are
worded from FaceCLIP's prompt table, which this layer may not import; it writes through `ShardWriter`.
One file (or shard series) per split; records without a split go to `all`. Records or samples that
cannot be exported (no caption for csv/wds, an image ref that names no record of the split) are counted
in `skipped`, not silently lost.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from facevlm.errors import FacevlmError
from facevlm.schema import FaceRecord

FORMATS = ("csv", "wds", "chat")


@dataclass
class ExportConfig:
    format: str = "csv"
    rows: str = "caption"  # csv: one row per caption | per image
    size: int | None = None  # resize square face crops to this side (None: native resolution)
    margin: float = 0.2  # face box margin, as in store.face_crop
    samples_per_shard: int = 1000
    sep: str = "\t"
    quality: int = 95
    split: str | None = None  # export only this split
    check_noface: bool = True  # chat: run the face detector on face-free crops of photos, drop those with a face
    workers: int | None = None  # chat: processes drawing synthetic backgrounds (None: 1 for 1,000+ faces on 2+ cores)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise FacevlmError(f"export format must be one of {', '.join(FORMATS)}, not {self.format!r}")
        if self.rows not in ("caption", "image"):
            raise FacevlmError(f"rows must be 'caption' or 'image', not {self.rows!r}")
        if self.samples_per_shard < 1:
            raise FacevlmError("samples_per_shard must be >= 1")


@dataclass
class ExportReport:
    files: dict[str, list[str]] = field(default_factory=dict)  # split -> written csv/jsonl/tar files
    rows: Counter = field(default_factory=Counter)  # split -> rows / samples written
    skipped: Counter = field(default_factory=Counter)  # reason -> records

    def lines(self) -> list[str]:
        out = [
            f"{split}: {self.rows[split]} rows in {len(files)} file(s), e.g. {files[0]}"
            for split, files in self.files.items()
        ]
        return out + [f"skipped {n}: {reason}" for reason, n in self.skipped.items()]


def crop_jpeg(record: FaceRecord, cfg: ExportConfig) -> bytes:
    from facevlm.data.store import face_crop

    buf = io.BytesIO()
    face_crop(record, size=cfg.size, margin=cfg.margin).save(buf, format="JPEG", quality=cfg.quality)
    return buf.getvalue()


def sample_json(record: FaceRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "source": record.source,
        "licence": record.licence,
        "identity": record.identity,
        "split": record.split,
        "captions": record.captions,
        "attributes": [
            {"name": a.name, "value": a.value, "origin": a.origin, "prob": a.prob, "model": a.model}
            for a in record.attributes
        ],
    }


def by_split(records: Iterator[FaceRecord], cfg: ExportConfig) -> Iterator[tuple[str, FaceRecord]]:
    for record in records:
        split = record.split or "all"
        if cfg.split is None or split == cfg.split:
            yield split, record


def export_csv(records: Iterator[FaceRecord], out: Path, cfg: ExportConfig) -> ExportReport:
    report, writers, counters = ExportReport(), {}, Counter()
    handles = []
    try:
        for split, record in by_split(records, cfg):
            if not record.captions:
                report.skipped["records without a caption"] += 1
                continue
            if split not in writers:
                path = out / f"{split}.csv"
                handles.append(path.open("w", newline="", encoding="utf-8"))
                writers[split] = csv.writer(handles[-1], delimiter=cfg.sep)
                writers[split].writerow(["filepath", "title"])
                report.files[split] = [str(path)]
            image = out / "images" / split / f"{counters[split]:07d}.jpg"
            counters[split] += 1
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(crop_jpeg(record, cfg))
            for caption in record.captions if cfg.rows == "caption" else record.captions[:1]:
                writers[split].writerow([str(image.resolve()), " ".join(caption.split())])
                report.rows[split] += 1
    finally:
        for h in handles:
            h.close()
    return report


class ShardWriter:
    """Tar shards of webdataset samples, `per_shard` samples each, one series per split.

    `name(split, n)` is the shard's path under `out` ("train-000000.tar" for open_clip's webdataset
    loader, "train/0.tar" for CLIP_benchmark's), so both layouts share one writer. A sample is
    `{"__key__": key, ext: bytes, ...}`; members are written in the given order.
    """

    def __init__(self, out: Path, per_shard: int, name: Callable[[str, int], str]):
        self.out, self.per_shard, self.name = out, per_shard, name
        self.files: dict[str, list[str]] = {}
        self.counts: Counter[str] = Counter()
        self._open: dict[str, tarfile.TarFile] = {}

    def write(self, split: str, sample: dict[str, Any]) -> None:
        index = self.counts[split]
        if index % self.per_shard == 0:
            if split in self._open:
                self._open[split].close()
            path = self.out / self.name(split, index // self.per_shard)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._open[split] = tarfile.open(path, "w")
            self.files.setdefault(split, []).append(str(path))
        for ext, data in sample.items():
            if ext == "__key__":
                continue
            info = tarfile.TarInfo(f"{sample['__key__']}.{ext}")
            info.size = len(data)
            self._open[split].addfile(info, io.BytesIO(data))
        self.counts[split] += 1

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        for t in self._open.values():
            t.close()
        self._open.clear()


def export_wds(records: Iterator[FaceRecord], out: Path, cfg: ExportConfig) -> ExportReport:
    report = ExportReport()
    with ShardWriter(out, cfg.samples_per_shard, lambda split, n: f"{split}-{n:06d}.tar") as shards:
        for split, record in by_split(records, cfg):
            if not record.captions:
                report.skipped["records without a caption"] += 1
                continue
            shards.write(
                split,
                {
                    "__key__": f"{shards.counts[split]:06d}",
                    "jpg": crop_jpeg(record, cfg),
                    "txt": record.captions[0].encode(),
                    "json": json.dumps(sample_json(record)).encode(),
                },
            )
            report.rows[split] += 1
    report.files = shards.files
    return report


def export_dataset(src: str | Path, out: str | Path, cfg: ExportConfig, qa_cfg: Any = None) -> ExportReport:
    from facevlm.data.store import iter_records, load_records

    ds = load_records(src, split=cfg.split if cfg.split != "all" else None)
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    if cfg.format == "csv":
        report = export_csv(iter_records(ds), out, cfg)
    elif cfg.format == "wds":
        report = export_wds(iter_records(ds), out, cfg)
    else:
        from facevlm.data.export.chat import export_chat

        report = export_chat(ds, out, cfg, qa_cfg)
    (out / "export_report.json").write_text(
        json.dumps(
            {"format": cfg.format, "files": report.files, "rows": report.rows, "skipped": report.skipped}, indent=2
        )
    )
    return report


@click.command("export", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("src")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option(
    "--rows",
    type=click.Choice(["caption", "image"]),
    default="caption",
    show_default=True,
    help="csv: one row per caption (each caption a positive) or per image (first caption).",
)
@click.option("--size", type=int, default=None, help="Resize square face crops to SIZE (default: native).")
@click.option("--margin", type=float, default=0.2, show_default=True, help="Margin around the face box.")
@click.option("--samples-per-shard", type=int, default=1000, show_default=True)
@click.option("--sep", default="\t", show_default="tab", help="csv separator (open_clip_train default: tab).")
@click.option("--split", default=None, help="Export only this split.")
def export_cmd(
    src: str,
    fmt: str,
    out: str,
    rows: str,
    size: int | None,
    margin: float,
    samples_per_shard: int,
    sep: str,
    split: str | None,
) -> None:
    """Export stored dataset SRC as open_clip CSV, webdataset shards or JSONL chat samples.

    For CLIP_benchmark's wds/<name> layout (retrieval or attribute classification) use
    `facevlm eval export`."""
    cfg = ExportConfig(
        format=fmt, rows=rows, size=size, margin=margin, samples_per_shard=samples_per_shard, sep=sep, split=split
    )
    report = export_dataset(src, out, cfg)
    for line in report.lines():
        click.echo(line)
