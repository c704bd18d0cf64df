"""`facevlm data build data/X.yaml`: one recipe runs sources -> detect -> label -> caption -> split -> save,
then writes the QA chat JSONL.

A recipe is the reproducible description of a training set: which sources (synthetic renders, real
datasets through their adapters, the sample photos/videos), which experts ran with which thresholds, and
how it was split. Records stream through the stages as generators, so memory stays flat at any size.
Every enabled stage is resolved and its config validated before any work starts, so a typo in the
last stage's options fails the recipe at once instead of after the sources were read.
"""

from __future__ import annotations

import importlib
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from facevlm.config import from_dict, load_recipe
from facevlm.data.splits import SplitConfig
from facevlm.errors import FacevlmError
from facevlm.schema import FaceRecord

# stage -> (module, function, accepted config class names). detect takes the one detector config,
# facevlm.vision.detect.DetectorConfig (a recipe's `detect:` keys are its fields).
STAGES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "synth": ("facevlm.data.synth", "generate", ("SynthConfig",)),
    "detect": ("facevlm.data.detect", "detect_records", ("DetectorConfig",)),
    "label": ("facevlm.data.label", "label_records", ("LabelConfig",)),
    "caption": ("facevlm.data.caption", "caption_records", ("CaptionConfig",)),
    "qa": ("facevlm.data.qa", "qa_samples", ("QAConfig",)),
}


@dataclass
class AdapterSource:
    name: str
    root: str | None = None
    split: str = "train"
    limit: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SamplesSource:
    frames_per_video: int = 8
    root: str | None = None  # default: the fetched `samples` asset


@dataclass
class SourceSpec:
    """Exactly one of: `synth` (SynthConfig fields), `adapter`, `samples`."""

    synth: dict[str, Any] | None = None
    adapter: AdapterSource | None = None
    samples: SamplesSource | None = None
    workers: int | None = None  # synth worker processes (None: the renderer's default)


@dataclass
class Recipe:
    name: str
    sources: list[SourceSpec]
    output: str = ""  # dataset name or path; default: `name`
    detect: dict[str, Any] | None = None  # DetectorConfig fields + `enabled` (default true when present)
    label: dict[str, Any] | None = None  # LabelConfig fields (experts, thresholds)
    caption: dict[str, Any] | None = None  # CaptionConfig fields
    qa: dict[str, Any] | None = None  # QAConfig fields; writes <output>/qa/<split>.jsonl
    splits: SplitConfig | None = None  # None: keep the sources' own splits

    def __post_init__(self) -> None:
        if not self.sources:
            raise FacevlmError(f"recipe {self.name}: no sources")
        for i, s in enumerate(self.sources):
            given = [k for k in ("synth", "adapter", "samples") if getattr(s, k) is not None]
            if len(given) != 1:
                raise FacevlmError(
                    f"recipe {self.name}: sources[{i}] must set exactly one of synth, adapter, "
                    f"samples (got {', '.join(given) or 'none'})"
                )
        self.output = self.output or self.name


def _stage(name: str) -> tuple[Callable[..., Any], type]:
    """The stage's function and config class, imported only for the stages a recipe enables."""
    module_name, func_name, config_names = STAGES[name]
    module = importlib.import_module(module_name)
    config = next(getattr(module, c) for c in config_names if hasattr(module, c))
    return getattr(module, func_name), config


def _enabled(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stage's config fields, or None when the stage is off (absent, null, or enabled: false)."""
    if spec is None:
        return None
    fields = dict(spec)
    return fields if fields.pop("enabled", True) else None


@dataclass
class Plan:
    """A recipe with every enabled stage resolved to (function, typed config)."""

    recipe: Recipe
    stages: dict[str, tuple[Callable[..., Any], Any]]
    synth: list[tuple[Any, int | None]]


def plan(recipe: Recipe, where: str = "") -> Plan:
    where = where or f"recipe {recipe.name}"
    stages: dict[str, tuple[Callable[..., Any], Any]] = {}
    for name in ("detect", "label", "caption", "qa"):
        fields = _enabled(getattr(recipe, name))
        if fields is not None:
            func, cls = _stage(name)
            stages[name] = (func, from_dict(cls, fields, where=f"{where}: {name}"))
    synth = []
    for i, s in enumerate(recipe.sources):
        if s.synth is not None:
            func, cls = _stage("synth")
            stages["synth"] = (func, None)
            synth.append((from_dict(cls, s.synth, where=f"{where}: sources[{i}].synth"), s.workers))
    return Plan(recipe, stages, synth)


def _sources(p: Plan, summaries: list[Any]) -> Iterator[FaceRecord]:
    from facevlm.data.adapters import open_source

    synth = iter(p.synth)
    for s in p.recipe.sources:
        if s.synth is not None:
            cfg, workers = next(synth)
            yield from p.stages["synth"][0](cfg, workers=workers, encoded=True)  # PNGs made in the workers
        elif s.adapter is not None:
            a = s.adapter
            reader = open_source(a.name, a.root, a.split, limit=a.limit, **a.options)
            summaries.append(reader.summary)
            yield from reader
        else:
            reader = open_source("samples", s.samples.root, "all", frames_per_video=s.samples.frames_per_video)
            summaries.append(reader.summary)
            yield from reader


def records(
    p: Plan, summaries: list[Any] | None = None, stage_summaries: dict[str, Any] | None = None
) -> Iterator[FaceRecord]:
    """The recipe's record stream: sources, then detect, label and caption where enabled. The detect and
    label stages' summaries (what was dropped; how the experts agreed with ground truth) are put in
    `stage_summaries` by stage name, filled in as the stream is consumed."""
    from facevlm.data.adapters.samples import apply_sample_labels
    from facevlm.data.detect import DetectSummary
    from facevlm.data.label import LabelSummary

    stage_summaries = stage_summaries if stage_summaries is not None else {}
    stream: Iterable[FaceRecord] = _sources(p, summaries if summaries is not None else [])
    if "detect" in p.stages:
        func, cfg = p.stages["detect"]
        stream = func(stream, cfg, stage_summaries.setdefault("detect", DetectSummary()))
    stream = (apply_sample_labels(r) if r.meta.get("sample_labels") else r for r in stream)
    if "label" in p.stages:
        func, cfg = p.stages["label"]
        stream = func(stream, cfg, stage_summaries.setdefault("label", LabelSummary()))
    if "caption" in p.stages:
        func, cfg = p.stages["caption"]
        stream = func(stream, cfg)
    return iter(stream)


def run(recipe: Recipe, out: str | Path | None = None, where: str = "") -> Path:
    """Build the recipe's dataset; returns its path. The QA JSONL goes to `<path>/qa/`."""
    from tqdm import tqdm

    from facevlm.data.export import ExportConfig
    from facevlm.data.export.chat import export_chat
    from facevlm.data.splits import split_dataset
    from facevlm.data.store import dataset_path, load_records, save_records

    p = plan(recipe, where)
    target = dataset_path(out or recipe.output)
    start, summaries, stage_summaries = time.time(), [], {}
    # Known length only when every source is synthetic; adapters stream without a count.
    total = sum(len(cfg) for cfg, _ in p.synth) if all(s.synth is not None for s in recipe.sources) else None
    stream = tqdm(records(p, summaries, stage_summaries), total=total, desc=f"build {recipe.name}", unit="face")
    if recipe.splits is not None:
        raw = target.with_name(target.name + ".unsplit")
        save_records(stream, raw)
        try:
            path, split_report = split_dataset(raw, target, recipe.splits)
        finally:
            shutil.rmtree(raw, ignore_errors=True)
    else:
        path, split_report = save_records(stream, target), None
    qa_report = None
    if "qa" in p.stages:
        qa_report = export_chat(load_records(path), path / "qa", ExportConfig(format="chat"), p.stages["qa"][1])
    provenance = {
        "recipe": asdict(recipe),
        "seconds": round(time.time() - start, 1),
        "sources": [s.to_dict() for s in summaries],
        "stages": {name: s.to_dict() for name, s in stage_summaries.items()},
        "splits": asdict(split_report) if split_report else None,
        "qa": {"files": qa_report.files, "rows": dict(qa_report.rows), "skipped": dict(qa_report.skipped)}
        if qa_report
        else None,
    }
    (path / "recipe.json").write_text(json.dumps(provenance, indent=2, default=str))
    return path


@click.command("build", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("recipe_file", type=click.Path(dir_okay=False))
@click.option("--out", default=None, help="Dataset name or path (default: the recipe's `output`).")
def build(recipe_file: str, out: str | None) -> None:
    """Run a data/*.yaml RECIPE_FILE end to end into a stored dataset (+ QA JSONL when `qa` is set)."""
    from facevlm.data.store import load_records, summarize

    recipe = load_recipe(Recipe, recipe_file)
    path = run(recipe, out, where=recipe_file)
    info = summarize(load_records(path))
    click.echo(
        f"built {recipe.name}: {info['records']} faces "
        f"({', '.join(f'{k} {v}' for k, v in info['splits'].most_common())}) -> {path}"
    )
    provenance = json.loads((path / "recipe.json").read_text())
    for stage, report in provenance["stages"].items():
        for line in report["lines"]:
            click.echo(f"  {stage}: {line}")
    for s in provenance["sources"]:
        if s["skipped"]:
            click.echo(f"  {s['source']} [{s['split']}]: skipped {sum(s['skipped'].values())} ({s['skipped']})")
    if provenance["qa"]:
        click.echo(f"  QA: {provenance['qa']['rows']} chat samples in {path / 'qa'}")
