"""Bootstrap CIs cover the truth at about their nominal rate; paired comparisons; fairness groups."""

from __future__ import annotations

import numpy as np
import pytest

from facevlm.eval.fairness import fairness, group_report, headline_line
from facevlm.eval.metrics import classification_fn, mean_fn
from facevlm.eval.stats import bootstrap, paired


def test_bootstrap_coverage_simulation():
    """200 simulated test sets of 150 items with true accuracy 0.7: the 95% percentile CI must
    contain 0.7 in roughly 95% of them (0.90-0.99 allows for Monte-Carlo error of 200 trials)."""
    rng = np.random.default_rng(123)
    covered = 0
    for trial in range(200):
        correct = rng.random(150) < 0.7
        _, ci = bootstrap(mean_fn(correct, "acc"), np.arange(150), n_boot=300, seed=trial)
        covered += ci["acc"].low <= 0.7 <= ci["acc"].high
    assert 0.90 <= covered / 200 <= 0.99


def test_bootstrap_is_seeded_and_brackets_point():
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=(80, 4)), rng.integers(0, 4, 80)
    fn = classification_fn(scores, labels, list("abcd"))
    p1, c1 = bootstrap(fn, np.arange(80), n_boot=100, seed=7)
    p2, c2 = bootstrap(fn, np.arange(80), n_boot=100, seed=7)
    _, c3 = bootstrap(fn, np.arange(80), n_boot=100, seed=8)
    assert c1["acc1"] == c2["acc1"] and c1["acc1"] != c3["acc1"]
    for key in ("acc1", "balanced_accuracy"):
        assert c1[key].low <= p1[key] <= c1[key].high


def test_paired_comparison():
    rng = np.random.default_rng(5)
    n = 400
    a = rng.random(n) < 0.6
    b = a.copy()
    flip = rng.choice(np.flatnonzero(~a), 60, replace=False)  # B fixes 60 of A's errors
    b[flip] = True
    res = paired(mean_fn(a, "acc"), mean_fn(b, "acc"), np.arange(n), n_boot=500, seed=0)
    assert res.diff["acc"] == pytest.approx(60 / n)
    assert 0 < res.ci["acc"].low < 60 / n < res.ci["acc"].high
    assert res.p_diff_le_0["acc"] == 0.0
    # the paired CI is much narrower than a difference of independent CIs would be
    _, ci_a = bootstrap(mean_fn(a, "acc"), np.arange(n), 500, 1)
    _, ci_b = bootstrap(mean_fn(b, "acc"), np.arange(n), 500, 2)
    independent = np.hypot(ci_a["acc"].high - ci_a["acc"].low, ci_b["acc"].high - ci_b["acc"].low)
    assert res.ci["acc"].high - res.ci["acc"].low < 0.75 * independent
    same = paired(mean_fn(a, "acc"), mean_fn(a, "acc"), np.arange(n), n_boot=100, seed=0)
    assert same.diff["acc"] == 0 and same.ci["acc"].low == same.ci["acc"].high == 0
    assert same.to_json()["ci"]["acc"] == [0.0, 0.0]


def test_fairness_constructed_groups():
    # group f: 10 items all right; group m: 10 items, 5 right; group x: 2 items (below min size)
    correct = np.array([1] * 10 + [1] * 5 + [0] * 5 + [0, 0], dtype=float)
    labels = np.array(["f"] * 10 + ["m"] * 10 + ["x"] * 2, dtype=object)
    rep = group_report(
        mean_fn(correct, "acc"), np.arange(22), labels, "gender_presentation", "acc", n_boot=300, seed=0, min_size=5
    )
    assert rep.values == {"f": 1.0, "m": 0.5, "x": 0.0}
    assert rep.sizes == {"f": 10, "m": 10, "x": 2}
    assert rep.gap == pytest.approx(0.5)  # x left out of the gap
    assert rep.ratio == pytest.approx(0.5)
    assert rep.ci["f"] == [1.0, 1.0]
    assert rep.ci["m"][0] < 0.5 < rep.ci["m"][1]
    assert rep.gap_ci[0] < 0.5 < rep.gap_ci[1]
    unlabelled = np.array([""] * 22, dtype=object)
    out = fairness(
        mean_fn(correct, "acc"),
        np.arange(22),
        {"gender_presentation": labels, "skin_tone": unlabelled},
        "acc",
        n_boot=50,
    )
    assert list(out) == ["gender_presentation"]
    line = headline_line("acc", 0.68, [0.5, 0.8], out)
    assert "gender_presentation: gap 0.500" in line and line.startswith("acc 0.680 [0.500, 0.800]")
