"""Per-attribute calibration of zero-shot decisions, fitted on real labelled faces and stored with the model.

A zero-shot score is a difference of cosines whose zero point and scale depend on the prompts and on
what the model was trained on: on rendered faces "score > 0" is a fine decision, on real photos the
untrained threshold put FaceCLIP below the majority guess on every attribute (issue 11). So each
attribute gets, from a real labelled split (real-train; never the dev split, which is for reporting):

- binary: the threshold on the score margin with the best accuracy, and a scale so that
  sigmoid(scale * (score - threshold)) is a calibrated probability (Platt scaling, one parameter);
- categorical: a temperature (softmax(scale * scores)); the decision stays the argmax;
- `reliable`: whether the calibrated decision beats the majority guess on *held-out* faces
  (identity-grouped K-fold CV on the fitting split: the threshold fitted on K-1 folds, scored on the
  held-out one, against the split's majority value), with a cluster bootstrap over identities for how
  sure that is. An unreliable
  attribute is never asserted: `decide` returns UNCERTAIN for every face.

Pure numpy: fitting needs only scores, labels and identities, so the eval layer computes the scores
(`facevlm eval calibrate`) and this module stays importable wherever a head is used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facevlm.errors import FacevlmError

CALIBRATION_FILE = "calibration.json"
UNCERTAIN = "uncertain"
VERSION = 1
_SCALES = np.geomspace(0.5, 500.0, 60)  # candidate Platt scales / inverse temperatures


def prompts_sha(attribute: str, negative_weight: float = 0.5) -> str:
    """Fingerprint of the prompts (and, for categorical heads, the negative weight) a calibration was
    fitted for: a head built from other prompts gets no calibration rather than a wrong threshold."""
    from facevlm.clip.prompts import attribute_prompts
    from facevlm.schema import VOCABULARY

    binary = VOCABULARY[attribute].kind == "binary"
    payload = json.dumps([attribute_prompts(attribute), None if binary else float(negative_weight)], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class AttributeCalibration:
    """One attribute's fitted decision rule and how far it can be trusted (see the module docstring)."""

    attribute: str
    kind: str  # binary | categorical
    values: list[str]
    threshold: float = 0.0  # binary: "true" when score > threshold
    scale: float = 1.0  # probability slope (binary) / inverse temperature (categorical)
    reliable: bool = False
    cv_accuracy: float = float("nan")  # held-out accuracy of the calibrated rule (grouped CV)
    majority_accuracy: float = float("nan")  # held-out accuracy of the majority guess, same folds
    gain_low: float = float("nan")  # lower bound of cv - majority accuracy (cluster bootstrap)
    majority: str = ""
    n: int = 0
    n_groups: int = 0
    prompts_sha: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("binary", "categorical"):
            raise FacevlmError(f"calibration {self.attribute}: kind must be binary or categorical, not {self.kind!r}")
        if self.kind == "binary" and list(self.values) != ["true", "false"]:
            raise FacevlmError(f"calibration {self.attribute}: a binary attribute's values are ['true', 'false']")
        if not (self.scale > 0 and math.isfinite(self.threshold)):
            raise FacevlmError(f"calibration {self.attribute}: scale must be > 0 and threshold finite")

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """[N, V] calibrated probabilities from head scores ([N] "true" margins or [N, V] for binary heads,
        whose "true" column is used; [N, V] for categorical)."""
        s = np.asarray(scores, dtype=np.float64)
        if self.kind == "binary":
            margin = s[:, 0] if s.ndim == 2 else s
            p = 1.0 / (1.0 + np.exp(-self.scale * (margin - self.threshold)))
            return np.stack([p, 1.0 - p], axis=1)
        z = self.scale * s
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def decide(self, scores: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(value per face, [N, V] probabilities); every value is UNCERTAIN when the attribute is not
        reliable: the probabilities are still returned for whoever wants to look, but nothing is asserted."""
        probs = self.probabilities(scores)
        if not self.reliable:
            return [UNCERTAIN] * len(probs), probs
        return [self.values[i] for i in probs.argmax(axis=1)], probs


@dataclass
class Calibration:
    """All attributes of one model, with what they were fitted on and the weights they belong to."""

    attributes: dict[str, AttributeCalibration] = field(default_factory=dict)
    fitted_on: str = ""  # e.g. "real[train]"
    weights_sha256: str = ""  # of the model folder's weights file; another model's calibration is ignored
    folds: int = 5
    confidence: float = 0.9
    version: int = VERSION

    def get(self, attribute: str, sha: str | None = None) -> AttributeCalibration | None:
        """The attribute's calibration, or None when there is none or it was fitted for other prompts."""
        cal = self.attributes.get(attribute)
        return None if cal is None or (sha is not None and cal.prompts_sha != sha) else cal

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "attributes": {k: asdict(v) for k, v in self.attributes.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        if data.get("version") != VERSION:
            raise FacevlmError(f"calibration version {data.get('version')!r}; this facevlm reads {VERSION}")
        attrs = {k: AttributeCalibration(**v) for k, v in data.get("attributes", {}).items()}
        return cls(**{**data, "attributes": attrs})

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CALIBRATION_FILE
        tmp = path.with_name(f".{CALIBRATION_FILE}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, allow_nan=True))
        tmp.replace(path)
        return path


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read(folder: str | Path, weights: str | Path) -> Calibration | None:
    """The folder's calibration (None when there is none). One fitted for other weights (the model was
    retrained in place) is kept only to say so: every attribute in it becomes unreliable, so the stale
    thresholds can never assert a label, and a warning says how to refit."""
    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        cal = Calibration.from_json(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise FacevlmError(f"{path}: not a readable calibration ({exc})") from None
    if cal.weights_sha256 != file_sha256(weights):
        logging.getLogger("facevlm").warning(
            "%s was fitted for other weights (the model was retrained): every calibrated attribute is "
            "uncertain until `facevlm eval calibrate %s` refits it",
            path,
            Path(folder).name,
        )
        cal.fitted_on += " (stale: fitted for other weights)"
        for a in cal.attributes.values():
            a.reliable = False
    return cal


# ---------------------------------------------------------------- fitting (pure numpy)
def grouped_folds(groups: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold index per item; all items of a group (identity) share a fold, folds balanced by item count
    (largest groups first, each into the currently smallest fold; seeded order among equal sizes)."""
    groups = np.asarray(groups)
    names, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    k = max(1, min(k, len(names)))
    rng = np.random.default_rng(seed)
    order = sorted(rng.permutation(len(names)), key=lambda g: -counts[g])
    size = np.zeros(k, dtype=np.int64)
    fold_of = np.zeros(len(names), dtype=np.int64)
    for g in order:
        f = int(np.argmin(size))
        fold_of[g] = f
        size[f] += counts[g]
    return fold_of[inverse]


def best_threshold(scores: np.ndarray, positive: np.ndarray) -> float:
    """The threshold t maximising accuracy of "positive when score > t": midpoints between adjacent
    distinct scores, plus one below and one above all (always-true / always-false). Ties go to the
    threshold closest to 0, the uncalibrated rule."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    if not len(s):
        return 0.0
    u = np.unique(s)
    cands = np.concatenate([[u[0] - 1.0], (u[:-1] + u[1:]) / 2.0, [u[-1] + 1.0]])
    order = np.argsort(s, kind="stable")
    ss, yy = s[order], y[order]
    # items with score <= t are predicted false: correct = negatives at or below + positives above
    below = np.searchsorted(ss, cands, side="right")
    neg_cum = np.concatenate([[0], np.cumsum(~yy)])
    pos_cum = np.concatenate([[0], np.cumsum(yy)])
    correct = neg_cum[below] + (pos_cum[-1] - pos_cum[below])
    best = np.flatnonzero(correct == correct.max())
    return float(cands[best[np.argmin(np.abs(cands[best]))]])


def _nll_scale(logits_fn: Any, n: int) -> float:
    """The scale (from a fixed grid) with the lowest mean negative log-likelihood."""
    losses = [logits_fn(a) for a in _SCALES]
    return float(_SCALES[int(np.argmin(losses))]) if n else 1.0


def _binary_nll(margin: np.ndarray, y: np.ndarray, a: float) -> float:
    z = a * margin
    return float(np.mean(np.logaddexp(0.0, -z) * y + np.logaddexp(0.0, z) * (1 - y)))


def _categorical_nll(scores: np.ndarray, labels: np.ndarray, a: float) -> float:
    z = a * scores
    z = z - z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), labels]))


def _gain_low(gain: np.ndarray, groups: np.ndarray, confidence: float, n_boot: int, seed: int) -> float:
    """Lower `confidence` quantile-bound of the mean per-item gain, resampling whole groups (faces of
    one identity are not independent: video frames, crops of one photo)."""
    names, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=gain, minlength=len(names))
    counts = np.bincount(inverse, minlength=len(names)).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(names), size=(n_boot, len(names)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    return float(np.quantile(means, 1.0 - confidence)) if confidence > 0 else float(np.mean(gain))


def fit_attribute(
    attribute: str,
    scores: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    values: list[str],
    *,
    folds: int = 5,
    seed: int = 0,
    confidence: float = 0.9,
    n_boot: int = 2000,
    prompts: str = "",
) -> AttributeCalibration:
    """Fit one attribute. `scores`: [N] "true" margins (binary) or [N, V]; `labels`: [N] value indices
    (binary: 0 = "true", 1 = "false"; -1 = unlabelled, left out); `groups`: [N] identities.

    reliable = the held-out gain over the majority guess is above 0 at `confidence` (one-sided,
    cluster bootstrap over identities; confidence 0: the point estimate must be above 0)."""
    binary = len(values) == 2 and list(values) == ["true", "false"] and np.asarray(scores).ndim == 1
    keep = np.asarray(labels) >= 0
    s, y, g = np.asarray(scores, dtype=np.float64)[keep], np.asarray(labels)[keep], np.asarray(groups)[keep]
    base = dict(attribute=attribute, kind="binary" if binary else "categorical", values=list(values))
    if len(y) < 2 * max(folds, 2) or len(np.unique(g)) < max(folds, 2):
        # too few labelled faces to tell anything from the majority guess: never asserted
        return AttributeCalibration(**base, n=int(len(y)), n_groups=int(len(np.unique(g))), prompts_sha=prompts)

    def rule(train: np.ndarray) -> Any:
        if binary:
            t = best_threshold(s[train], y[train] == 0)
            return lambda idx: np.where(s[idx] > t, 0, 1)
        return lambda idx: s[idx].argmax(axis=1)

    def majority_of(train: np.ndarray) -> int:
        counts = np.bincount(y[train], minlength=len(values))
        return int(np.argmax(counts))

    fold = grouped_folds(g, folds, seed)
    pred = np.empty_like(y)
    for f in np.unique(fold):
        test, train = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        pred[test] = rule(train)(test)
    # The bar is the majority guess of the whole split (what the majority baseline ships), not one refitted
    # per fold: with near-balanced classes a leave-fold-out majority is the held-out fold's minority class
    # and would make any rule look good.
    every = np.arange(len(y))
    maj = np.full_like(y, majority_of(every))
    gain = (pred == y).astype(np.float64) - (maj == y)
    low = _gain_low(gain, g, confidence, n_boot, seed)
    if binary:
        threshold = best_threshold(s, y == 0)
        scale = _nll_scale(lambda a: _binary_nll(s - threshold, (y == 0).astype(np.float64), a), len(y))
    else:
        threshold, scale = 0.0, _nll_scale(lambda a: _categorical_nll(s, y, a), len(y))
    return AttributeCalibration(
        **base,
        threshold=threshold,
        scale=scale,
        reliable=bool(low > 0),
        cv_accuracy=float(np.mean(pred == y)),
        majority_accuracy=float(np.mean(maj == y)),
        gain_low=low,
        majority=values[majority_of(every)],
        n=int(len(y)),
        n_groups=int(len(np.unique(g))),
        prompts_sha=prompts,
    )
