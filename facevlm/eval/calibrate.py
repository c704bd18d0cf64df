"""`facevlm eval calibrate`: fit a FaceCLIP's per-attribute zero-shot calibration on real labelled faces
and store it with the model (`calibration.json` in its folder, read by `facevlm.clip.load`).

The scores are exactly the shipped head's (`FaceCLIP.zero_shot_head` on the crops the model was trained
on); the fitting is `facevlm.clip.calibration` (thresholds, temperatures, identity-grouped CV against the
majority guess). Only a training split may be used: the real dev split is what the calibrated model is
reported on (eval/real.yaml), so fitting on it would grade the model on its own answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facevlm.errors import FacevlmError

# The attributes the real set labels by hand (data/cards/real.md) and eval/real.yaml scores.
REAL_ATTRIBUTES: tuple[str, ...] = (
    "expression",
    "Smiling",
    "Mouth_Slightly_Open",
    "Eyeglasses",
    "No_Beard",
    "Wearing_Hat",
)
# No_Beard on the real set means "no facial hair at all" (hand label), as eval/real.yaml scores it.
REAL_META_LABELS: dict[str, str] = {"No_Beard": "!hand_labels.facial_hair"}
HELD_OUT_SPLITS = ("dev", "test", "val")


@dataclass
class CalibrateConfig:
    data: str = "real"  # stored dataset (name or path)
    split: str = "train"
    attributes: list[str] = field(default_factory=lambda: list(REAL_ATTRIBUTES))
    meta_labels: dict[str, str] = field(default_factory=lambda: dict(REAL_META_LABELS))
    folds: int = 5
    confidence: float = 0.9
    negative_weight: float = 0.5
    seed: int = 0
    allow_sensitive: bool = False

    def __post_init__(self) -> None:
        if self.split in HELD_OUT_SPLITS:
            raise FacevlmError(
                f"calibrate: split {self.split!r} is held out for reporting; fit on a training split (real: train)"
            )
        if self.folds < 2 or not 0.0 <= self.confidence < 1.0:
            raise FacevlmError(f"calibrate: folds ({self.folds}) must be >= 2 and confidence in [0, 1)")


def _labels(values: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray([index.get(v, -1) for v in values], dtype=np.int64)


def fit(clip: Any, cfg: CalibrateConfig) -> Any:
    """The Calibration of FaceCLIP `clip` (a facevlm.clip.FaceCLIP loaded from a folder) on cfg's split."""
    from facevlm.clip.calibration import Calibration, file_sha256, fit_attribute, prompts_sha
    from facevlm.clip.checkpoint import WEIGHTS_FILE
    from facevlm.clip.data import held_out
    from facevlm.data.store import iter_records, load_records
    from facevlm.eval.datasets import from_records

    folder = Path(clip.source)
    if not (folder / WEIGHTS_FILE).is_file():
        raise FacevlmError(f"calibrate: {clip.source} is not a trained FaceCLIP folder (train one with `make models`)")
    fraction = trained_holdout(folder, cfg.data, cfg.split)
    records = iter_records(load_records(cfg.data, cfg.split))
    if fraction is not None:  # trained on this split: only the identities its recipe held out are unseen
        records = (r for r in records if held_out(r.identity, fraction))
    data = from_records(records, cfg.data, cfg.split, "gt", 0, clip.meta.get("crop_margin"), cfg.meta_labels)
    missing = [a for a in cfg.attributes if a not in data.attributes]
    if missing:
        raise FacevlmError(f"calibrate: {cfg.data}[{cfg.split}] has no labels for {', '.join(missing)}")
    emb = clip.encode_images(data.images)
    groups = np.asarray([i or f"face:{n}" for n, i in enumerate(data.identities)], dtype=object)
    fitted = {}
    for attribute in cfg.attributes:
        head = clip.zero_shot_head(attribute, negative_weight=cfg.negative_weight, allow_sensitive=cfg.allow_sensitive)
        scores = head.scores(emb).numpy()
        fitted[attribute] = fit_attribute(
            attribute,
            scores[:, 0] if head.binary else scores,
            _labels(data.labels(attribute), head.values),
            groups,
            list(head.values),
            folds=cfg.folds,
            seed=cfg.seed,
            confidence=cfg.confidence,
            prompts=prompts_sha(attribute, cfg.negative_weight),
        )
    return Calibration(
        fitted,
        fitted_on=f"{cfg.data}[{cfg.split}]"
        + ("" if fraction is None else f" identities held out of training (holdout {fraction:g}), {len(data)} faces"),
        weights_sha256=file_sha256(folder / WEIGHTS_FILE),
        folds=cfg.folds,
        confidence=cfg.confidence,
    )


def trained_holdout(folder: Path, data: str, split: str) -> float | None:
    """None when the model's recipe (config.yaml in its folder) did not train on `data`[`split`]; else the
    fraction of identities it held out (`data.holdout`), the only faces of that split it has not seen.
    Calibrating on faces a model was trained on would call its memorised answers reliable: refused."""
    import yaml

    path = folder / "config.yaml"
    recipe = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    trained = recipe.get("data") or {}
    names = [Path(str(n)).name for n in trained.get("datasets") or []]
    if Path(data).name not in names or (trained.get("splits") and split not in trained["splits"]):
        return None
    fraction = float((trained.get("holdout") or {}).get(Path(data).name, 0.0))
    if fraction <= 0:
        raise FacevlmError(
            f"calibrate: {folder.name} was trained on {data}[{split}] with nothing held out; retrain with "
            f"`data.holdout: {{{Path(data).name}: 0.3}}` in its recipe (or calibrate on a split it never saw)"
        )
    return fraction


def calibrate(model: str, cfg: CalibrateConfig) -> tuple[Any, Path]:
    """Fit and write `calibration.json` into the model's folder; returns (calibration, path)."""
    from facevlm.clip import load

    clip = load(model, backend="eager")
    cal = fit(clip, cfg)
    return cal, cal.save(clip.source)


def summary_lines(cal: Any) -> list[str]:
    lines = [f"fitted on {cal.fitted_on}, {cal.folds}-fold identity-grouped CV, confidence {cal.confidence}"]
    for name, a in cal.attributes.items():
        rule = f"threshold {a.threshold:+.4f}" if a.kind == "binary" else "argmax"
        lines.append(
            f"{name:22s} {'reliable ' if a.reliable else 'UNCERTAIN'} held-out acc {a.cv_accuracy:.3f} vs "
            f"majority ({a.majority}) {a.majority_accuracy:.3f}, gain >= {a.gain_low:+.3f}; {rule}, "
            f"scale {a.scale:.1f}; n={a.n} ({a.n_groups} identities)"
        )
    return lines
