"""Benchmark tasks. Each task module has `run(model, data, cfg, ctx) -> list[TaskResult]`.

A TaskResult keeps, beside its numbers, the per-item metric functions it was computed from
(`parts`), so the suite runner can make paired comparisons between two models on the same items
without recomputing embeddings.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facevlm.errors import FacevlmError
from facevlm.eval.fairness import fairness
from facevlm.eval.metrics import MetricFn, narrow
from facevlm.eval.stats import bootstrap

# task name in suites -> module; the CLIP_benchmark task name is set by each module
TASKS: dict[str, str] = {
    "zeroshot": "facevlm.eval.tasks.zeroshot",
    "retrieval": "facevlm.eval.tasks.retrieval",
    "identity": "facevlm.eval.tasks.identity",
    "linear_probe": "facevlm.eval.tasks.linear_probe",
    "vqa": "facevlm.eval.tasks.vqa",
    "search_call": "facevlm.eval.tasks.search_call",
    "robustness": "facevlm.eval.tasks.robustness",
    "efficiency": "facevlm.eval.tasks.efficiency",
}


class NotApplicable(FacevlmError):
    """The task cannot score this model/dataset pair (no text tower, no identities...): the suite
    runner records the reason and goes on instead of failing the whole suite."""


def require(condition: bool, reason: str) -> None:
    if not condition:
        raise NotApplicable(reason)


@dataclass
class Part:
    """One item space of a task (images, text queries, pairs) and its metric function."""

    fn: MetricFn
    items: np.ndarray
    groups: dict[str, np.ndarray] = field(default_factory=dict)  # per-item group labels (for fairness)


@dataclass
class TaskResult:
    task: str  # CLIP_benchmark-style task name
    dataset: str
    headline: str  # metric shown in leaderboards
    metrics: dict[str, float]
    ci: dict[str, list[float]]
    groups: dict[str, Any]
    n: int
    parts: list[Part] = field(default_factory=list, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """Run-wide settings and the embedding cache."""

    seed: int = 0
    n_boot: int = 1000
    group_attributes: tuple[str, ...] = ("gender_presentation", "age_group", "skin_tone")
    min_group_size: int = 5
    cache_dir: Path | None = None
    progress: bool = False

    def image_embeddings(self, model: Any, data: Any) -> np.ndarray:
        """Embeddings of `data.images`, cached on disk by model + dataset fingerprint."""
        path = self._cache_path("img", model.fingerprint(), data.fingerprint)
        if path is not None and path.is_file():
            return np.load(path)
        emb = model.encode_images(data.images, progress=self.progress)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, emb)
        return emb

    def text_embeddings(self, model: Any, texts: list[str]) -> np.ndarray:
        key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        path = self._cache_path("txt", model.fingerprint(), key)
        if path is not None and path.is_file():
            return np.load(path)
        emb = model.encode_texts(texts)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, emb)
        return emb

    def _cache_path(self, kind: str, model_fp: str, data_fp: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / model_fp / f"{kind}-{data_fp}.npy"

    def score(self, task: str, dataset: str, headline: str, parts: list[Part], extra: dict | None = None) -> TaskResult:
        """Point estimates + bootstrap CIs of every part, and fairness groups of the first part."""
        metrics: dict[str, float] = {}
        ci: dict[str, list[float]] = {}
        main_point: dict[str, float] = {}
        for part in parts:
            point, intervals = bootstrap(part.fn, part.items, self.n_boot, self.seed)
            main_point = main_point or point
            metrics.update(point)
            ci.update({k: v.as_list() for k, v in intervals.items()})
        groups: dict[str, Any] = {}
        main = parts[0]
        if main.groups and headline in main_point:
            groups = fairness(
                narrow(main.fn, headline, main.items),
                main.items,
                main.groups,
                headline,
                self.n_boot,
                self.seed,
                self.min_group_size,
            )
        return TaskResult(task, dataset, headline, metrics, ci, groups, int(len(main.items)), parts, extra or {})

    def group_labels(self, data: Any, extra: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        return {a: data.labels(a) for a in (*self.group_attributes, *extra) if a in data.attributes}


def run_task(name: str, model: Any, data: Any, cfg: Any, ctx: Context, **kw: Any) -> list[TaskResult]:
    if name not in TASKS:
        raise FacevlmError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    return importlib.import_module(TASKS[name]).run(model, data, cfg, ctx, **kw)
