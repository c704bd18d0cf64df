"""Suites: YAML files naming datasets, models, tasks and paired comparisons, and the runner.

The runner loads each dataset once, each model once (one at a time, to bound memory), runs every task
on every applicable (model, dataset) pair, writes one JSON per result, then the paired comparisons
(same items, same bootstrap resamples) and the report. A (model, task) pair that does not apply
(an image-only expert in text retrieval) is skipped with its reason in `skipped.json`, not an error.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from facevlm import paths
from facevlm.config import load_recipe
from facevlm.errors import FacevlmError
from facevlm.eval.datasets import DatasetSpec, EvalDataset, load_dataset
from facevlm.eval.models import ModelSpec, build_model
from facevlm.eval.output import result_json, write_json
from facevlm.eval.stats import paired
from facevlm.eval.tasks import TASKS, Context, NotApplicable, TaskResult, run_task


@dataclass
class TaskSpec:
    """One `tasks:` entry. Options not used by a task are ignored by it."""

    task: str
    datasets: list[str] = field(default_factory=list)  # default: all
    models: list[str] = field(default_factory=list)  # default: all
    attributes: list[str] = field(default_factory=list)  # zeroshot / linear_probe / vqa
    headline: str = ""
    negative_weight: float = 0.5  # zeroshot: weight of FineCLIPER-style negative prompts (categorical)
    recall_k: list[int] = field(default_factory=lambda: [1, 5, 10])
    fars: list[float] = field(default_factory=lambda: [1e-3, 1e-2])
    max_pairs: int = 200_000
    pairs_file: str = ""  # identity: a verification protocol file (LFW pairs.txt format); "$VAR" expanded
    shots: list[int] = field(default_factory=lambda: [0, 1, 5, 10])  # linear probe; 0 = all training data
    probe_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    probe_c: float = 1.0
    inner: str = "zeroshot"  # robustness: the task re-run under corruption
    corruptions: list[str] = field(default_factory=lambda: ["blur", "jpeg", "downscale", "occlusion"])
    severities: list[int] = field(default_factory=lambda: [1, 2, 3])
    max_items: int = 0  # vqa: cap on questions (0 = all)
    n_images: int = 64  # efficiency
    n_queries: int = 32
    repeats: int = 3


@dataclass
class PairSpec:
    """Paired comparison: b minus a on the same items, for every (dataset, task) both were run on."""

    a: str
    b: str
    tasks: list[str] = field(default_factory=list)


@dataclass
class Suite:
    name: str
    datasets: list[DatasetSpec]
    models: list[ModelSpec]
    tasks: list[TaskSpec]
    paired: list[PairSpec] = field(default_factory=list)
    seed: int = 0
    n_boot: int = 1000
    group_attributes: list[str] = field(default_factory=lambda: ["gender_presentation", "age_group", "skin_tone"])
    min_group_size: int = 5
    cache: bool = True
    report: bool = True


def load_suite(path: str | Path) -> Suite:
    suite = load_recipe(Suite, path)
    names = [d.name for d in suite.datasets]
    model_names = [m.name for m in suite.models]
    for what, values in (("dataset", names), ("model", model_names)):
        dup = {v for v in values if values.count(v) > 1}
        if dup:
            raise FacevlmError(f"{path}: duplicate {what} name(s) {', '.join(sorted(dup))}")
    for i, t in enumerate(suite.tasks):
        if t.task not in TASKS:
            raise FacevlmError(f"{path}: tasks[{i}].task {t.task!r} is not one of {', '.join(TASKS)}")
        for ref, pool, what in ((t.datasets, names, "dataset"), (t.models, model_names, "model")):
            bad = [r for r in ref if r not in pool]
            if bad:
                raise FacevlmError(f"{path}: tasks[{i}] names unknown {what}(s) {', '.join(bad)}")
    for i, p in enumerate(suite.paired):
        bad = [m for m in (p.a, p.b) if m not in model_names]
        if bad:
            raise FacevlmError(f"{path}: paired[{i}] names unknown model(s) {', '.join(bad)}")
    return suite


def select(suite: Suite, models: list[str], datasets: list[str], tasks: list[str] | None = None) -> Suite:
    """The suite restricted to some models/datasets/tasks (e.g. leave out a model not trained yet)."""
    for wanted, pool, what in (
        (models, [m.name for m in suite.models], "model"),
        (datasets, [d.name for d in suite.datasets], "dataset"),
        (tasks or [], [t.task for t in suite.tasks], "task"),
    ):
        bad = [w for w in wanted if w not in pool]
        if bad:
            raise FacevlmError(f"suite {suite.name}: no {what}(s) {', '.join(bad)}; it has {', '.join(pool)}")
    if models:
        suite.models = [m for m in suite.models if m.name in models]
        suite.tasks = [t for t in suite.tasks if not t.models or any(m in models for m in t.models)]
        suite.paired = [p for p in suite.paired if p.a in models and p.b in models]
    if datasets:
        suite.datasets = [d for d in suite.datasets if d.name in datasets]
        kept = []
        for t in suite.tasks:
            if t.datasets:  # an explicit list emptied by the selection drops the task (empty = all)
                t.datasets = [d for d in t.datasets if d in datasets]
                if not t.datasets:
                    continue
            kept.append(t)
        suite.tasks = kept
    if tasks:
        suite.tasks = [t for t in suite.tasks if t.task in tasks]
    return suite


def default_out_dir(suite: Suite) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return paths.home() / "eval" / suite.name / stamp


def run_suite(suite: Suite, out_dir: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run everything; returns {"results": [paths], "paired": [paths], "skipped": [...], "seconds": s}."""
    from facevlm.eval.fairness import headline_line

    start = time.perf_counter()
    ctx = Context(
        seed=suite.seed,
        n_boot=suite.n_boot,
        group_attributes=tuple(suite.group_attributes),
        min_group_size=suite.min_group_size,
        cache_dir=paths.home() / "cache" / "embeddings" if suite.cache else None,
    )
    datasets: dict[tuple[str, str], EvalDataset] = {}
    specs = {d.name: d for d in suite.datasets}

    def dataset(name: str, split: str | None = None) -> EvalDataset:
        key = (name, split or specs[name].split)
        if key not in datasets:
            log(f"loading dataset {name} [{key[1]}]")
            datasets[key] = load_dataset(specs[name], key[1])
        return datasets[key]

    kept: dict[tuple[str, str, str], TaskResult] = {}
    written, skipped = [], []
    for mspec in suite.models:
        tasks = [t for t in suite.tasks if not t.models or mspec.name in t.models]
        if not tasks:
            continue
        log(f"loading model {mspec.name} ({mspec.kind})")
        model = build_model(mspec)
        for tspec in tasks:
            for dname in tspec.datasets or list(specs):
                data = dataset(dname)
                kwargs = {}
                if tspec.task == "linear_probe" and specs[dname].train_split:
                    kwargs["train"] = dataset(dname, specs[dname].train_split)
                try:
                    results = run_task(tspec.task, model, data, tspec, ctx, **kwargs)
                except NotApplicable as exc:
                    skipped.append({"model": mspec.name, "dataset": dname, "task": tspec.task, "reason": str(exc)})
                    log(f"  skip {tspec.task} on {dname}: {exc}")
                    continue
                for res in results:
                    payload = result_json(
                        res,
                        mspec.name,
                        getattr(model, "pretrained", "") or "",
                        suite.name,
                        suite.seed,
                        model.fingerprint(),
                        data.fingerprint,
                    )
                    written.append(write_json(out_dir, [res.dataset, mspec.name, res.task], payload))
                    kept[(mspec.name, res.dataset, res.task)] = res
                    ci = res.ci.get(res.headline, [float("nan")] * 2)
                    log(
                        f"  {mspec.name} {res.dataset} {res.task}: "
                        + headline_line(res.headline, res.metrics.get(res.headline, float("nan")), ci, res.groups)
                    )
        del model
        gc.collect()
    pair_files = []
    for pspec in suite.paired:
        for (mname, dname, task), res_a in kept.items():
            res_b = kept.get((pspec.b, dname, task))
            if mname != pspec.a or res_b is None or (pspec.tasks and task not in pspec.tasks) or not res_a.parts:
                continue
            part_a, part_b = res_a.parts[0], res_b.parts[0]
            if len(part_a.items) != len(part_b.items) or (part_a.items != part_b.items).any():
                skipped.append(
                    {
                        "model": f"{pspec.a} vs {pspec.b}",
                        "dataset": dname,
                        "task": task,
                        "reason": "the two results were scored on different items",
                    }
                )
                continue
            cmp = paired(part_a.fn, part_b.fn, part_a.items, suite.n_boot, suite.seed)
            # "a"/"b" hold each model's metrics (PairedResult.to_json); the names go under model_a/model_b.
            payload = {
                "kind": "paired",
                "dataset": dname,
                "task": task,
                "model_a": pspec.a,
                "model_b": pspec.b,
                "headline": res_a.headline,
                "suite": suite.name,
                "seed": suite.seed,
                "n": int(len(part_a.items)),
                **cmp.to_json(),
            }
            pair_files.append(write_json(out_dir, ["paired", dname, task, pspec.a, "vs", pspec.b], payload))
            h = res_a.headline
            if h in cmp.diff:
                log(
                    f"  paired {pspec.b} - {pspec.a} {dname} {task} {h}: {cmp.diff[h]:+.3f} "
                    f"[{cmp.ci[h].low:+.3f}, {cmp.ci[h].high:+.3f}]"
                )
    write_json(out_dir, ["skipped"], {"kind": "skipped", "items": skipped})
    summary = {"results": written, "paired": pair_files, "skipped": skipped, "seconds": time.perf_counter() - start}
    if suite.report:
        from facevlm.eval.report import write_report

        summary["report"] = write_report([out_dir], out_dir / "report")
        log(f"report: {summary['report']}")
    return summary
