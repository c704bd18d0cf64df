"""Benchmark metrics, written so that every one can be recomputed on any subset of items.

Each metric family has a *per-item* preparation step (ranks, APs, correctness) and an aggregate
computed from an index array. The bootstrap (stats.py) and the fairness report (fairness.py) then
only ever call `aggregate(idx)`: resampling queries or pairs costs a gather and a mean, not a new
similarity matrix. Metric names follow CLIP_benchmark where it has one (acc1, acc5,
mean_per_class_recall, image_retrieval_recall@K, text_retrieval_recall@K).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

MetricFn = Callable[[np.ndarray], dict[str, float]]


def _nanmean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


# ---------------------------------------------------------------- classification
def classification_fn(
    scores: np.ndarray, labels: np.ndarray, classes: Sequence[str], topk: Sequence[int] = (1, 5)
) -> MetricFn:
    """acc@k, balanced accuracy (= mean per-class recall over classes present in the subset) and
    per-class recall. `scores` [N, C] (any monotone score), `labels` [N] class indices."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n_classes = scores.shape[1]
    order = np.argsort(-scores, axis=1, kind="stable")
    hits = {k: (order[:, : min(k, n_classes)] == labels[:, None]).any(axis=1) for k in topk if k <= n_classes or k == 1}
    top1 = order[:, 0]

    def fn(idx: np.ndarray) -> dict[str, float]:
        out = {f"acc{k}": _nanmean(h[idx]) for k, h in hits.items()}
        recalls = []
        for c, name in enumerate(classes):
            sel = idx[labels[idx] == c]
            if len(sel):
                r = float(np.mean(top1[sel] == c))
                recalls.append(r)
                out[f"recall/{name}"] = r
        out["mean_per_class_recall"] = float(np.mean(recalls)) if recalls else float("nan")
        out["balanced_accuracy"] = out["mean_per_class_recall"]
        return out

    return fn


# ---------------------------------------------------------------- multilabel (CelebA style)
def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """AP = mean over positives of precision at the rank of that positive (ties broken by order,
    scores sorted descending). NaN when there is no positive."""
    positives = np.asarray(positives, dtype=bool)
    n_pos = int(positives.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    rel = positives[order]
    hit_ranks = np.flatnonzero(rel) + 1
    return float(np.mean(np.arange(1, n_pos + 1) / hit_ranks))


def multilabel_fn(scores: np.ndarray, targets: np.ndarray, names: Sequence[str], threshold: float = 0.0) -> MetricFn:
    """mAP over attributes and mean per-attribute accuracy (scores > threshold predicts "true"), with
    each attribute's base rate (`rate/<name>`, what its AP is worth against).
    `targets` [N, A] in {1, 0, -1}; -1 = unlabelled, left out of that attribute only."""
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets)
    correct = (scores > threshold) == (targets == 1)

    def fn(idx: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        aps, accs = [], []
        for a, name in enumerate(names):
            sel = idx[targets[idx, a] >= 0]
            if not len(sel):
                continue
            acc = float(np.mean(correct[sel, a]))
            accs.append(acc)
            out[f"acc/{name}"] = acc
            out[f"rate/{name}"] = float(np.mean(targets[sel, a] == 1))  # base rate: a random ranking's AP
            ap = average_precision(scores[sel, a], targets[sel, a] == 1)
            if not np.isnan(ap):
                aps.append(ap)
                out[f"ap/{name}"] = ap
        out["mean_accuracy"] = float(np.mean(accs)) if accs else float("nan")
        out["mAP"] = float(np.mean(aps)) if aps else float("nan")
        return out

    return fn


# ---------------------------------------------------------------- retrieval
@dataclass
class RankStats:
    """Per-query results of one retrieval direction: the 1-based rank of the first positive and
    the query's average precision."""

    first_rank: np.ndarray
    ap: np.ndarray


def rank_stats(sim: np.ndarray, positives: np.ndarray) -> RankStats:
    """`sim` [Q, G] similarities, `positives` [Q, G] bool (several positives per query allowed)."""
    sim = np.asarray(sim, dtype=np.float64)
    positives = np.asarray(positives, dtype=bool)
    if (positives.sum(axis=1) == 0).any():
        raise ValueError("every retrieval query needs at least one positive")
    order = np.argsort(-sim, axis=1, kind="stable")
    rel = np.take_along_axis(positives, order, axis=1)
    first = rel.argmax(axis=1) + 1
    cum = np.cumsum(rel, axis=1)
    ranks = np.arange(1, sim.shape[1] + 1)[None, :]
    ap = np.where(rel, cum / ranks, 0.0).sum(axis=1) / rel.sum(axis=1)
    return RankStats(first.astype(np.int64), ap)


def retrieval_fn(stats: RankStats, prefix: str, ks: Sequence[int] = (1, 5, 10)) -> MetricFn:
    def fn(idx: np.ndarray) -> dict[str, float]:
        r = stats.first_rank[idx]
        out = {f"{prefix}_recall@{k}": _nanmean(r <= k) for k in ks}
        out[f"{prefix}_mAP"] = _nanmean(stats.ap[idx])
        out[f"{prefix}_median_rank"] = float(np.median(r)) if len(r) else float("nan")
        return out

    return fn


# ---------------------------------------------------------------- identity / verification
def roc_auc(scores: np.ndarray, genuine: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half: P(score_genuine > score_impostor)."""
    scores = np.asarray(scores, dtype=np.float64)
    genuine = np.asarray(genuine, dtype=bool)
    n_pos, n_neg = int(genuine.sum()), int((~genuine).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    return float((ranks[genuine].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def tar_at_far(scores: np.ndarray, genuine: np.ndarray, far: float) -> float:
    """True accept rate at the strictest threshold whose false accept rate is <= `far`
    (accept = score > threshold). NaN when there are too few impostor pairs to measure `far`
    (fewer than 1/far), so a small test set cannot report a meaningless TAR@FAR=1e-3."""
    scores = np.asarray(scores, dtype=np.float64)
    genuine = np.asarray(genuine, dtype=bool)
    imp = np.sort(scores[~genuine])[::-1]
    if len(imp) * far < 1 or not genuine.any():
        return float("nan")
    k = int(np.floor(far * len(imp)))
    threshold = imp[k] if k < len(imp) else -np.inf
    return float(np.mean(scores[genuine] > threshold))


def verification_fn(scores: np.ndarray, genuine: np.ndarray, fars: Sequence[float] = (1e-3,)) -> MetricFn:
    def fn(idx: np.ndarray) -> dict[str, float]:
        out = {"roc_auc": roc_auc(scores[idx], genuine[idx])}
        for far in fars:
            out[f"tar@far={far:g}"] = tar_at_far(scores[idx], genuine[idx], far)
        return out

    return fn


def identity_nn_hits(emb: np.ndarray, identities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out rank-1 identification: for each face whose identity appears at least twice,
    is its nearest other face the same identity? Returns (query indices, hit booleans)."""
    emb = np.asarray(emb, dtype=np.float32)
    identities = np.asarray(identities)
    sim = emb @ emb.T
    np.fill_diagonal(sim, -np.inf)
    nn = sim.argmax(axis=1)
    _, inverse, counts = np.unique(identities, return_inverse=True, return_counts=True)
    queries = np.flatnonzero(counts[inverse] >= 2)
    return queries, identities[nn[queries]] == identities[queries]


def mean_fn(values: np.ndarray, name: str) -> MetricFn:
    """The metric of a per-item score (correctness, recall hit): its mean over the subset."""
    values = np.asarray(values, dtype=np.float64)
    return lambda idx: {name: _nanmean(values[idx])}


# ---------------------------------------------------------------- VQA answers
_ARTICLES = {"a", "an", "the"}
_YES = {"yes", "yeah", "yep", "yup", "true", "correct", "affirmative", "y"}
_NO = {"no", "nope", "nah", "false", "incorrect", "negative", "n"}
_NUMBERS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_PUNCT = re.compile(r"[^\w\s]")


def normalize_answer(text: str) -> str:
    """VQA-style answer normalisation: lowercase, punctuation and articles removed, yes/no synonyms
    mapped to yes/no, number words 0-20 to digits, whitespace collapsed. The VQA task reads a reply's
    yes/no from it; what the rest of a reply says is graded by the data engine's fact checker."""
    words = _PUNCT.sub(" ", str(text).lower()).split()
    out = []
    for w in words:
        if w in _ARTICLES:
            continue
        w = "yes" if w in _YES else "no" if w in _NO else _NUMBERS.get(w, w)
        out.append(w)
    return " ".join(out)


def grouped_accuracy_fn(correct: np.ndarray, kinds: np.ndarray, name: str = "accuracy") -> MetricFn:
    """Overall accuracy plus accuracy per question type (VQA) or per any item kind."""
    correct = np.asarray(correct, dtype=np.float64)
    kinds = np.asarray(kinds)
    values = sorted(set(kinds.tolist()))

    def fn(idx: np.ndarray) -> dict[str, float]:
        out = {name: _nanmean(correct[idx])}
        for v in values:
            sel = idx[kinds[idx] == v]
            if len(sel):
                out[f"{name}/{v}"] = _nanmean(correct[sel])
        return out

    return fn


# ---------------------------------------------------------------- combinators
def merged(fns: Sequence[MetricFn]) -> MetricFn:
    """One metric function returning the union of several (same item space); `narrow` can pick the
    member that computes one metric back out of it."""

    def fn(idx: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        for f in fns:
            out.update(f(idx))
        return out

    fn.members = list(fns)  # type: ignore[attr-defined]
    return fn


def narrow(fn: MetricFn, metric: str, items: np.ndarray) -> MetricFn:
    """The cheapest member of a merged metric function that still returns `metric`: fairness and
    robustness resample one headline metric thousands of times and need not recompute the rest."""
    for member in getattr(fn, "members", ()):
        if metric in member(items):
            return narrow(member, metric, items)
    return fn


def restricted(fn: MetricFn, mask: np.ndarray) -> MetricFn:
    """`fn` on the items of a subset where `mask` holds (items without this label are skipped)."""
    return lambda idx: fn(idx[mask[idx]])


def prefixed(fn: MetricFn, prefix: str) -> MetricFn:
    return lambda idx: {f"{prefix}{k}": v for k, v in fn(idx).items()}
