"""Linear probe: logistic regression on frozen, L2-normalised image embeddings (train split) scored
on the test split; full data and few-shot k examples per class, each few-shot k averaged over
several seeds. The bootstrap resamples test images with the per-seed predictions fixed, so the CI is
the test-set uncertainty of the seed-averaged accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np

from facevlm.eval.datasets import class_labels
from facevlm.eval.metrics import MetricFn, classification_fn, merged, restricted
from facevlm.eval.tasks import Context, Part, TaskResult, require
from facevlm.schema import VOCABULARY

TASK = "linear_probe"


def few_shot_indices(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k training items per class (all of a class if it has fewer), drawn with `seed`."""
    rng = np.random.default_rng(seed)
    out = [rng.permutation(np.flatnonzero(labels == c))[:k] for c in np.unique(labels)]
    return np.sort(np.concatenate(out))


def fit_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_classes: int, c: float, seed: int
) -> np.ndarray:
    """[N_test, n_classes] class probabilities (columns of classes unseen in training stay 0)."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    clf.fit(x_train, y_train)
    probs = np.zeros((len(x_test), n_classes))
    probs[:, clf.classes_] = clf.predict_proba(x_test)
    return probs


def _mean_over_seeds(fns: list[MetricFn], prefix: str) -> MetricFn:
    def fn(idx: np.ndarray) -> dict[str, float]:
        runs = [f(idx) for f in fns]
        return {f"{prefix}{k}": float(np.nanmean([r.get(k, np.nan) for r in runs])) for k in runs[0]}

    return fn


def run(model: Any, data: Any, cfg: Any, ctx: Context, train: Any = None) -> list[TaskResult]:
    require(hasattr(model, "encode_images"), f"model {model.name} is a chat model")
    require(train is not None, f"linear_probe on {data.name} needs a train split (dataset `train_split:`)")
    results = []
    attributes = list(cfg.attributes) or [a for a in ("expression",) if a in data.attributes]
    require(bool(attributes), f"linear_probe: name the attributes to probe for {data.name}")
    x_train_all = ctx.image_embeddings(model, train)
    x_test_all = ctx.image_embeddings(model, data)
    fns: list[MetricFn] = []
    headline = ""
    for attribute in attributes:
        spec = VOCABULARY[attribute]
        classes = spec.values if spec.kind == "categorical" else ("false", "true")
        tr_items, y_tr = class_labels(train.labels(attribute), classes)
        te_items, y_te = class_labels(data.labels(attribute), classes)
        require(
            len(np.unique(y_tr)) >= 2 and len(te_items) > 0,
            f"linear_probe: {attribute} needs >= 2 classes in {train.name} [{train.split}] and test labels",
        )
        labels_full = np.full(len(data), -1)
        labels_full[te_items] = y_te
        for k in cfg.shots:
            seeds = [0] if k == 0 else list(cfg.probe_seeds)
            seed_fns = []
            for seed in seeds:
                sel = np.arange(len(tr_items)) if k == 0 else few_shot_indices(y_tr, k, seed)
                probs = np.zeros((len(data), len(classes)))
                probs[te_items] = fit_predict(
                    x_train_all[tr_items[sel]], y_tr[sel], x_test_all[te_items], len(classes), cfg.probe_c, seed
                )
                seed_fns.append(classification_fn(probs, labels_full, classes))
            tag = "full" if k == 0 else f"{k}shot"
            inner = _mean_over_seeds(seed_fns, f"{attribute}/{tag}/")
            fns.append(restricted(inner, labels_full >= 0))
            headline = headline or f"{attribute}/{tag}/balanced_accuracy"
    part = Part(merged(fns), np.arange(len(data)), ctx.group_labels(data))
    results.append(
        ctx.score(
            TASK,
            data.name,
            cfg.headline or headline,
            [part],
            {"attributes": attributes, "shots": list(cfg.shots), "train_n": len(train)},
        )
    )
    return results
