"""`facevlm bench cluster`: how well each clustering method (facevlm.index.cluster) groups labelled faces by
person, scored as pairwise and BCubed precision/recall/F1, at the identity model's verification threshold
and over a threshold sweep. Prints Markdown rows for docs/benchmarks.md with the command; nothing is asserted.

Sets (stored datasets, `facevlm.data.store`; faces cut by their stored box through the identity model's
own 5-point alignment, `facevlm.vision.identity`):
- `samples`: the real sample photos; labelled faces only: the file-name identities, and the frames of each
  single-subject video as one identity ("video:<file>", as eval/samples.yaml scores them);
- `real`: the hand-labelled real faces (data/cards/real.md); every face has an identity, `unknown_NN` being
  one person within one file, so one person seen in two files counts as two (a merge is scored wrong);
- `synthetic`: rendered identities (split `test`), in the identity space and in FaceCLIP's image space.

The interval after each F1 is the 2.5-97.5 percentile over `--draws` random subsets of 80% of the
identities (all faces of a drawn identity kept), each re-clustered: how much the figure depends on which
people happen to be in the set. "singletons" (every face alone) is the floor a method has to clear.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import click
import numpy as np

from facevlm.errors import FacevlmError
from facevlm.index.cluster import METHODS, cluster_vectors

SETS = ("samples", "real", "synthetic")


@dataclass(frozen=True)
class LabelledSet:
    """Vectors of labelled faces: `name` (set and space), [N, D] `vectors`, [N] `identities`."""

    name: str
    vectors: np.ndarray
    identities: np.ndarray


def _contingency(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(counts [clusters, classes], cluster index per item, class index per item)."""
    _, p = np.unique(np.asarray(pred), return_inverse=True)
    _, t = np.unique(np.asarray(truth), return_inverse=True)
    table = np.zeros((p.max(initial=-1) + 1, t.max(initial=-1) + 1), np.int64)
    np.add.at(table, (p, t), 1)
    return table, p, t


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def pairwise_scores(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """(precision, recall, F1) over pairs of faces: a pair is predicted together when in one cluster and
    truly together when of one identity. With no predicted (true) pairs, precision (recall) is 1."""
    if len(pred) != len(truth):
        raise FacevlmError(f"{len(pred)} cluster labels for {len(truth)} identities")
    table, _, _ = _contingency(pred, truth)

    def pairs(c: np.ndarray) -> float:
        return float((c * (c - 1) // 2).sum())

    both, predicted, true = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    p = both / predicted if predicted else 1.0
    r = both / true if true else 1.0
    return p, r, _f1(p, r)


def bcubed_scores(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """BCubed (Bagga & Baldwin 1998; Amigó et al. 2009) precision, recall, F1: per face, the share of its
    cluster that is its identity and the share of its identity that is in its cluster, averaged over faces.
    Unlike pairwise scores, big identities do not dominate."""
    if len(pred) != len(truth):
        raise FacevlmError(f"{len(pred)} cluster labels for {len(truth)} identities")
    if not len(pred):
        return 1.0, 1.0, 1.0
    table, p, t = _contingency(pred, truth)
    shared = table[p, t].astype(np.float64)
    precision = float(np.mean(shared / table.sum(1)[p]))
    recall = float(np.mean(shared / table.sum(0)[t]))
    return precision, recall, _f1(precision, recall)


def identity_subsets(identities: np.ndarray, draws: int, share: float = 0.8, seed: int = 0) -> list[np.ndarray]:
    """`draws` index sets, each all faces of a random `share` of the identities."""
    names = np.unique(identities)
    rng = np.random.default_rng(seed)
    keep = max(1, round(share * len(names)))
    return [np.flatnonzero(np.isin(identities, rng.choice(names, keep, replace=False))) for _ in range(draws)]


def _identity_name(record, dataset: str) -> str | None:
    if record.identity:
        return record.identity
    meta = record.meta or {}
    if dataset == "samples" and meta.get("kind") == "video" and record.n_faces == 1:
        return f"video:{record.image_key}"
    return None


def labelled_records(dataset: str, split: str | None = None) -> list:
    """The stored dataset's faces that have an identity label (see the module docstring)."""
    from facevlm.data.store import iter_records, load_records

    records = [r for r in iter_records(load_records(dataset, split)) if _identity_name(r, dataset) is not None]
    if not records:
        raise FacevlmError(f"dataset {dataset}: no face with an identity label")
    return records


def identity_set(dataset: str, split: str | None = None, model: str | None = None) -> LabelledSet:
    """Identity descriptors (raw, as galleries store them) of a stored dataset's labelled faces."""
    from facevlm.vision.identity import DEFAULT_IDENTITY_MODEL, FacePlace, load_identity_model

    expert = load_identity_model(model or DEFAULT_IDENTITY_MODEL)
    records = labelled_records(dataset, split)
    vectors = []
    for rec in records:
        fmt = (rec.meta or {}).get("landmark_format", "dlib5")
        place = FacePlace(
            tuple(rec.box) if rec.box else None, np.asarray(rec.landmarks or [], np.float32).reshape(-1, 2), fmt
        )
        vectors.append(expert.embed(rec.image, [place])[0])
    names = np.asarray([_identity_name(r, dataset) for r in records], dtype=object)
    return LabelledSet(f"{dataset} ({expert.name})", np.stack(vectors), names)


def faceclip_set(dataset: str, split: str | None, model: str) -> LabelledSet:
    """FaceCLIP image vectors (unit length) of a stored dataset's labelled faces, on the gallery's crop."""
    from facevlm.data.store import face_crop
    from facevlm.index.embed import get_embedder
    from facevlm.vision.crop import TRAINING_MARGIN

    emb = get_embedder(model)
    margin = float(emb.clip.meta.get("crop_margin", TRAINING_MARGIN))
    records = labelled_records(dataset, split)
    vectors = emb.images([face_crop(r, margin=margin) for r in records])
    names = np.asarray([_identity_name(r, dataset) for r in records], dtype=object)
    return LabelledSet(f"{dataset} (FaceCLIP {model})", vectors, names)


def _scores(data: LabelledSet, threshold: float, method: str) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    if method == "singletons":
        labels = np.arange(len(data.vectors))
    else:
        labels = cluster_vectors(data.vectors, threshold=threshold, method=method)
    return labels, (time.perf_counter() - t0) * 1e3


def _interval(data: LabelledSet, threshold: float, method: str, subsets: Sequence[np.ndarray]) -> tuple[str, str]:
    """ " [lo, hi]" of pairwise F1 and of BCubed F1 over the identity subsets."""
    if not subsets:
        return "", ""
    values = []
    for idx in subsets:
        part = LabelledSet(data.name, data.vectors[idx], data.identities[idx])
        labels, _ = _scores(part, threshold, method)
        values.append((pairwise_scores(labels, part.identities)[2], bcubed_scores(labels, part.identities)[2]))
    lo, hi = np.percentile(np.asarray(values), [2.5, 97.5], axis=0)
    return f" [{lo[0]:.2f}, {hi[0]:.2f}]", f" [{lo[1]:.2f}, {hi[1]:.2f}]"


def method_rows(data: LabelledSet, threshold: float, methods: Sequence[str], draws: int) -> list[str]:
    """One Markdown row per method at `threshold`: pairwise and BCubed P / R / F1, clusters, time."""
    subsets = identity_subsets(data.identities, draws)
    for method in methods:  # imports (scikit-learn, dlib) out of the timed call
        _scores(LabelledSet(data.name, data.vectors[:3], data.identities[:3]), threshold, method)
    n_ids = len(set(data.identities))
    rows = []
    for method in ("singletons", *methods):
        labels, ms = _scores(data, threshold, method)
        pp, pr, pf = pairwise_scores(labels, data.identities)
        bp, br, bf = bcubed_scores(labels, data.identities)
        ci = _interval(data, threshold, method, subsets) if method != "singletons" else ("", "")
        rows.append(
            f"| {data.name} | {len(labels)} / {n_ids} | {method} | {threshold:g} | {pp:.3f} / {pr:.3f} / "
            f"**{pf:.3f}**{ci[0]} | {bp:.3f} / {br:.3f} / **{bf:.3f}**{ci[1]} | {len(set(labels.tolist()))} "
            f"| {ms:.0f} ms |"
        )
    return rows


def sweep_rows(data: LabelledSet, thresholds: Sequence[float], methods: Sequence[str]) -> list[str]:
    """One row per threshold: pairwise F1 / BCubed F1 of each method."""
    rows = []
    for threshold in thresholds:
        cells = []
        for method in methods:
            labels, _ = _scores(data, threshold, method)
            cells.append(
                f"{pairwise_scores(labels, data.identities)[2]:.2f} / {bcubed_scores(labels, data.identities)[2]:.2f}"
            )
        rows.append(f"| {data.name} | {threshold:g} | " + " | ".join(cells) + " |")
    return rows


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


@click.command("cluster", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--sets", default=",".join(SETS), show_default=True, help="Labelled sets to score.")
@click.option("--methods", default=",".join(m for m in METHODS if m != "auto"), show_default=True)
@click.option("--identity-model", default=None, help="Identity model (default: the galleries' default).")
@click.option("--threshold", type=float, default=None, help="Same-person distance (default: the model's own).")
@click.option("--sweep", default="0.45,0.5,0.55,0.6,0.65,0.7", show_default=True, help="Thresholds to sweep.")
@click.option("--synthetic-split", default="test", show_default=True)
@click.option("--faceclip", default="facevlm-clip-small", show_default=True, help="FaceCLIP for the synthetic set.")
@click.option("--faceclip-sweep", default="0.6,0.7,0.8,0.9,1.0", show_default=True)
@click.option("--draws", type=int, default=100, show_default=True, help="Identity subsets for the intervals.")
def bench_cluster(
    sets: str,
    methods: str,
    identity_model: str | None,
    threshold: float | None,
    sweep: str,
    synthetic_split: str,
    faceclip: str,
    faceclip_sweep: str,
    draws: int,
) -> None:
    """Clustering quality (pairwise / BCubed F1) of each method on labelled real and synthetic faces."""
    from facevlm.vision.identity import DEFAULT_IDENTITY_MODEL, load_identity_model

    chosen = [m for m in methods.split(",") if m]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise FacevlmError(f"unknown cluster method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    expert = load_identity_model(identity_model or DEFAULT_IDENTITY_MODEL)
    cut = expert.threshold if threshold is None else threshold
    click.echo(f"command: facevlm bench cluster {' '.join(sys.argv[3:])}".rstrip())
    click.echo(f"identity model {expert.name}, threshold {cut:g} ({expert.threshold_source})")
    spaces = []
    for name in [s for s in sets.split(",") if s]:
        if name not in SETS:
            raise FacevlmError(f"unknown set {name!r}; choose from {', '.join(SETS)}")
        split = synthetic_split if name == "synthetic" else None
        spaces.append((identity_set(name, split, expert.name), cut, _floats(sweep)))
        if name == "synthetic" and faceclip:
            spaces.append((faceclip_set(name, split, faceclip), None, _floats(faceclip_sweep)))
    click.echo(
        "\n| set (space) | faces / identities | method | threshold | pairwise P / R / F1 | BCubed P / R / F1 "
        "| clusters | time |\n|---|---|---|---|---|---|---|---|"
    )
    for data, at, grid in spaces:
        if at is None:  # FaceCLIP has no calibrated same-person distance: the sweep's best average-linkage cut
            at = max(grid, key=lambda t: bcubed_scores(_scores(data, t, "average")[0], data.identities)[2])
        for row in method_rows(data, at, chosen, draws):
            click.echo(row)
    click.echo("\nThreshold sweep (cells: pairwise F1 / BCubed F1)")
    click.echo("\n| set (space) | threshold | " + " | ".join(chosen) + " |\n|---|---|" + "---|" * len(chosen))
    for data, _, grid in spaces:
        for row in sweep_rows(data, grid, chosen):
            click.echo(row)
