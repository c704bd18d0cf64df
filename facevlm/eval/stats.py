"""Seeded percentile-bootstrap confidence intervals and paired model comparison.

Items (images, queries, pairs) are resampled with replacement and the metric is recomputed on each
resample through the metric's `fn(idx)` (see metrics.py), so every metric gets a CI the same way,
including non-additive ones (balanced accuracy, AUC, median rank, mAP). A paired comparison reuses
the *same* resamples for both models, so the CI of the difference reflects only model variance, not
the luck of which items were drawn: that is what makes "A beats B" claims on small face sets honest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facevlm.eval.metrics import MetricFn


@dataclass
class Interval:
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [self.low, self.high]


def resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, n] index arrays; the same seed gives the same resamples for every model."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_boot, n))


def _percentile(values: list[float], level: float) -> Interval:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if not len(arr):
        return Interval(float("nan"), float("nan"))
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(arr, [alpha, 1.0 - alpha])
    return Interval(float(low), float(high))


def bootstrap(
    fn: MetricFn, items: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[dict[str, float], dict[str, Interval]]:
    """Point estimates on `items` (indices into the arrays `fn` closes over) and a percentile CI for
    every metric `fn` returns."""
    items = np.asarray(items, dtype=np.int64)
    point = fn(items)
    if n_boot <= 0 or len(items) == 0:
        return point, {k: Interval(float("nan"), float("nan")) for k in point}
    draws: dict[str, list[float]] = {k: [] for k in point}
    for row in resamples(len(items), n_boot, seed):
        values = fn(items[row])
        for k in draws:
            draws[k].append(values.get(k, float("nan")))
    return point, {k: _percentile(v, level) for k, v in draws.items()}


@dataclass
class PairedResult:
    """B minus A on the same items: the difference, its CI, and the share of resamples in which the
    difference is <= 0 (a one-sided bootstrap p-value for "B > A" on higher-is-better metrics; read
    it the other way round for median rank)."""

    a: dict[str, float]
    b: dict[str, float]
    diff: dict[str, float]
    ci: dict[str, Interval]
    p_diff_le_0: dict[str, float]

    def to_json(self) -> dict:
        return {
            "a": self.a,
            "b": self.b,
            "diff": self.diff,
            "ci": {k: v.as_list() for k, v in self.ci.items()},
            "p_diff_le_0": self.p_diff_le_0,
        }


def paired(
    fn_a: MetricFn, fn_b: MetricFn, items: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> PairedResult:
    """Compare two models scored on the same `items` (each fn indexes its own model's per-item
    results; the index arrays must refer to the same items in the same order)."""
    items = np.asarray(items, dtype=np.int64)
    a, b = fn_a(items), fn_b(items)
    keys = [k for k in a if k in b]
    diff = {k: b[k] - a[k] for k in keys}
    draws: dict[str, list[float]] = {k: [] for k in keys}
    for row in resamples(len(items), n_boot, seed):
        va, vb = fn_a(items[row]), fn_b(items[row])
        for k in keys:
            draws[k].append(vb.get(k, np.nan) - va.get(k, np.nan))
    p = {}
    for k, v in draws.items():
        arr = np.asarray(v)
        arr = arr[~np.isnan(arr)]
        p[k] = float(np.mean(arr <= 0)) if len(arr) else float("nan")
    return PairedResult(
        {k: a[k] for k in keys}, {k: b[k] for k in keys}, diff, {k: _percentile(v, level) for k, v in draws.items()}, p
    )
