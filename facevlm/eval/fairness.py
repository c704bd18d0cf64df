"""Per-group metrics, the max-min gap and the min/max ratio, each with a bootstrap CI.

Groups come from record attributes (apparent gender presentation, age group, skin tone, or any
attribute a suite names). The gap's CI is computed from whole-set resamples in which every group is
re-scored, so it accounts for group sizes varying between resamples as they would between test sets.
Groups smaller than `min_size` are reported but left out of gap/ratio: a 3-face group's accuracy is
noise, and letting it drive the headline gap would make every small benchmark look unfair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from facevlm.eval.metrics import MetricFn
from facevlm.eval.stats import _percentile, resamples

DEFAULT_GROUP_ATTRIBUTES: tuple[str, ...] = ("gender_presentation", "age_group", "skin_tone")


@dataclass
class GroupReport:
    attribute: str
    metric: str
    values: dict[str, float]
    ci: dict[str, list[float]]
    sizes: dict[str, int]
    gap: float
    gap_ci: list[float]
    ratio: float
    ratio_ci: list[float]

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "values": self.values,
            "ci": self.ci,
            "n": self.sizes,
            "gap": self.gap,
            "gap_ci": self.gap_ci,
            "ratio": self.ratio,
            "ratio_ci": self.ratio_ci,
        }


def _gap_ratio(values: dict[str, float], eligible: list[str]) -> tuple[float, float]:
    vals = [values[g] for g in eligible if not np.isnan(values.get(g, np.nan))]
    if len(vals) < 2:
        return float("nan"), float("nan")
    hi, lo = max(vals), min(vals)
    return hi - lo, (lo / hi if hi > 0 else float("nan"))


def group_report(
    fn: MetricFn,
    items: np.ndarray,
    labels: np.ndarray,
    attribute: str,
    metric: str,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    min_size: int = 5,
) -> GroupReport | None:
    """`labels[i]` is item i's group ("" or None = unknown, left out). None if fewer than two
    groups are labelled."""
    items = np.asarray(items, dtype=np.int64)
    labels = np.asarray(["" if v is None else str(v) for v in labels], dtype=object)
    item_labels = labels[items]
    groups = sorted(g for g in set(item_labels.tolist()) if g)
    if len(groups) < 2:
        return None
    masks = {g: item_labels == g for g in groups}
    sizes = {g: int(m.sum()) for g, m in masks.items()}
    values = {g: fn(items[m]).get(metric, float("nan")) for g, m in masks.items()}
    eligible = [g for g in groups if sizes[g] >= min_size]
    gap, ratio = _gap_ratio(values, eligible)
    draws: dict[str, list[float]] = {g: [] for g in groups}
    gaps, ratios = [], []
    for row in resamples(len(items), n_boot, seed):
        sub_items, sub_labels = items[row], item_labels[row]
        vals = {}
        for g in groups:
            sel = sub_items[sub_labels == g]
            vals[g] = fn(sel).get(metric, float("nan")) if len(sel) else float("nan")
            draws[g].append(vals[g])
        g_, r_ = _gap_ratio(vals, eligible)
        gaps.append(g_)
        ratios.append(r_)
    return GroupReport(
        attribute,
        metric,
        values,
        {g: _percentile(v, level).as_list() for g, v in draws.items()},
        sizes,
        gap,
        _percentile(gaps, level).as_list(),
        ratio,
        _percentile(ratios, level).as_list(),
    )


def fairness(
    fn: MetricFn,
    items: np.ndarray,
    group_labels: dict[str, np.ndarray],
    metric: str,
    n_boot: int = 1000,
    seed: int = 0,
    min_size: int = 5,
) -> dict[str, dict[str, Any]]:
    """Group reports for every attribute with at least two labelled groups, as JSON."""
    out = {}
    for attribute, labels in group_labels.items():
        rep = group_report(fn, items, labels, attribute, metric, n_boot, seed, min_size=min_size)
        if rep is not None:
            out[attribute] = rep.to_json()
    return out


def headline_line(metric: str, value: float, ci: list[float], groups: dict[str, dict[str, Any]]) -> str:
    """One line: the headline metric with its CI and, beside it, the gap/ratio per group attribute."""
    text = f"{metric} {value:.3f}" + ("" if ci[0] is None or ci[0] != ci[0] else f" [{ci[0]:.3f}, {ci[1]:.3f}]")
    for attribute, rep in groups.items():
        text += (
            f" | {attribute}: gap {rep['gap']:.3f} [{rep['gap_ci'][0]:.3f}, {rep['gap_ci'][1]:.3f}]"
            f" ratio {rep['ratio']:.2f}"
        )
    return text
