"""A stored face dataset in CLIP_benchmark's `wds/<name>` layout, so `clip_benchmark eval --dataset
wds/<name> --dataset_root OUT` scores any open_clip model (FaceCLIP through `local-dir:`) on it unchanged.

The layout is what CLIP_benchmark's `build_wds_dataset` reads (clip_benchmark/datasets/builder.py):

    OUT/<split>/0.tar, 1.tar, ...       samples: `s0000000.jpg` + `s0000000.cls` (class index) or `.txt`
    OUT/<split>/nshards.txt             the number of tar files of that split
    OUT/dataset_type.txt                "retrieval" or "classification"
    OUT/classnames.txt                  classification: one class name per line, in class-index order
    OUT/zeroshot_classification_templates.txt   classification: templates with `{c}` for the class name

Retrieval samples carry every caption of a face, one per line (`.txt`, read with `str.splitlines`).
Classification scores one attribute: a categorical one (expression, hair_color...) over all its schema
values, or a binary one (Smiling, Eyeglasses...) as class 0 = absent, 1 = present. Class names and
templates are FaceCLIP's prompt table (`facevlm.clip.prompts`: first phrasing of each value, its
templates), so CLIP_benchmark builds the positive side of the head FaceCLIP's own zero-shot task builds.
This lives in eval rather than in `facevlm data export` because the data layer may not import clip.
Only ground-truth labels are exported, as the harness's datasets do: a benchmark of pseudo-labels would
measure agreement with the labelling expert.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from facevlm.clip.prompts import TEMPLATES, binary_sides, value_phrases
from facevlm.data.export import ExportConfig, ShardWriter, by_split, crop_jpeg
from facevlm.errors import FacevlmError
from facevlm.schema import SENSITIVE, VOCABULARY, FaceRecord

RETRIEVAL = "retrieval"


@dataclass
class BenchmarkExportConfig:
    """`task` is "retrieval" or a categorical/binary schema attribute; `sensitive` must be set to export
    a sensitive attribute (apparent age, gender presentation, skin tone...), as everywhere in facevlm."""

    task: str = RETRIEVAL
    size: int | None = None  # square face crops of this side (None: native resolution)
    margin: float = 0.2
    samples_per_shard: int = 1000
    quality: int = 95
    split: str | None = None
    sensitive: bool = False

    def __post_init__(self) -> None:
        if self.task != RETRIEVAL:
            spec = VOCABULARY.get(self.task)
            if spec is None or spec.kind == "numeric":
                raise FacevlmError(f"task must be 'retrieval' or a categorical/binary attribute, not {self.task!r}")
            if self.task in SENSITIVE and not self.sensitive:
                raise FacevlmError(f"attribute {self.task!r} is sensitive; pass --sensitive to export it")
        if self.samples_per_shard < 1:
            raise FacevlmError("samples_per_shard must be >= 1")

    @property
    def crops(self) -> ExportConfig:
        return ExportConfig(format="wds", size=self.size, margin=self.margin, quality=self.quality, split=self.split)


@dataclass
class BenchmarkExport:
    dataset_type: str
    classes: list[str]  # class names in class-index order (empty for retrieval)
    values: list[str]  # the attribute value of each class index (empty for retrieval)
    files: dict[str, list[str]] = field(default_factory=dict)  # split -> tar files
    rows: Counter[str] = field(default_factory=Counter)  # split -> samples
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> records


def class_table(attribute: str) -> tuple[list[str], list[str]]:
    """(attribute value, class name) per class index, worded from the CLIP prompt table."""
    if VOCABULARY[attribute].kind == "binary":
        present, absent = binary_sides(attribute)
        return ["false", "true"], [absent[0], present[0]]
    phrases = value_phrases(attribute)
    return list(phrases), [p[0] for p in phrases.values()]


def templates() -> list[str]:
    """prompts.TEMPLATES with CLIP_benchmark's `{c}` placeholder (it calls `template.format(c=name)`)."""
    return [t.replace("{}", "{c}") for t in TEMPLATES]


def _gt_label(record: FaceRecord, attribute: str) -> str | None:
    value = record.attrs().get(attribute)
    return value.value if value is not None and value.origin == "gt" else None


def export_clip_benchmark(
    records: Iterable[FaceRecord], out: str | Path, cfg: BenchmarkExportConfig
) -> BenchmarkExport:
    """Write `records` under `out` in CLIP_benchmark's wds layout (see the module docstring)."""
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    retrieval = cfg.task == RETRIEVAL
    values, classes = ([], []) if retrieval else class_table(cfg.task)
    result = BenchmarkExport(RETRIEVAL if retrieval else "classification", classes, values)
    index = {v: i for i, v in enumerate(values)}
    crops = cfg.crops
    with ShardWriter(out, cfg.samples_per_shard, lambda split, n: f"{split}/{n}.tar") as shards:
        for split, record in by_split(iter(records), crops):
            if retrieval:
                captions = [" ".join(c.split()) for c in record.captions if c.strip()]
                if not captions:
                    result.skipped["records without a caption"] += 1
                    continue
                label = "\n".join(captions).encode()
            else:
                value = _gt_label(record, cfg.task)
                if value is None:
                    result.skipped[f"records without a ground-truth {cfg.task} label"] += 1
                    continue
                label = str(index[value]).encode()
            shards.write(
                split,
                {
                    "__key__": f"s{shards.counts[split]:07d}",
                    "jpg": crop_jpeg(record, crops),
                    "txt" if retrieval else "cls": label,
                },
            )
            result.rows[split] += 1
    result.files = shards.files
    if not result.files:
        raise FacevlmError(f"clip_benchmark export: no record to write ({dict(result.skipped) or 'empty input'})")
    for split, files in result.files.items():
        (out / split / "nshards.txt").write_text(f"{len(files)}\n")
    (out / "dataset_type.txt").write_text(result.dataset_type + "\n")
    if not retrieval:
        (out / "classnames.txt").write_text("\n".join(classes) + "\n")
        (out / "zeroshot_classification_templates.txt").write_text("\n".join(templates()) + "\n")
    (out / "export_report.json").write_text(
        json.dumps(
            {
                "format": "clip_benchmark",
                "task": cfg.task,
                "dataset_type": result.dataset_type,
                "classes": classes,
                "values": values,
                "files": result.files,
                "rows": result.rows,
                "skipped": result.skipped,
            },
            indent=2,
        )
    )
    return result
