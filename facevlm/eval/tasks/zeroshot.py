"""Zero-shot attribute classification from text prompts (or an expert's own attribute scores).

Categorical attributes (expression, age group, ...) get acc1/acc5, balanced accuracy and per-class
recall; binary ones (CelebA's 40, sunglasses, ...) are scored together as a multi-label problem (mAP
and mean per-attribute accuracy), as in CelebA attribute papers. All metrics share one item space,
the images, so one bootstrap resample scores every attribute consistently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from facevlm.clip.calibration import prompts_sha
from facevlm.clip.inference import build_head
from facevlm.errors import FacevlmError
from facevlm.eval.metrics import MetricFn, classification_fn, merged, multilabel_fn, prefixed, restricted
from facevlm.eval.models.base import l2n
from facevlm.eval.tasks import Context, Part, TaskResult, require
from facevlm.schema import VOCABULARY

TASK = "zeroshot_classification"


def default_attributes(data: Any) -> list[str]:
    """Every labelled categorical/binary vocabulary attribute except FairFace's race label (kept out
    of default reports; name it explicitly to score it)."""
    return [
        a
        for a in data.attributes
        if a in VOCABULARY and VOCABULARY[a].kind != "numeric" and a != "race" and (data.labels(a) != "").any()
    ]


def _class_embedding(ctx: Context, model: Any, prompts: list[str]) -> torch.Tensor:
    """Mean of the normalised prompt embeddings, renormalised (a prompt ensemble); ctx caches the
    embeddings of each prompt list, so repeated runs and bootstrap resamples do not re-encode text."""
    return torch.from_numpy(
        np.ascontiguousarray(l2n(ctx.text_embeddings(model, prompts).mean(axis=0)), dtype=np.float32)
    )


def attribute_scores(model: Any, data: Any, attribute: str, ctx: Context, negative_weight: float) -> np.ndarray:
    """[N, C] class scores (categorical) or [N] scores of "present" (binary, threshold 0).

    The head is built by `facevlm.clip.inference.build_head` from the shared prompt table, exactly as
    FaceCLIP's own zero-shot head, only embedding text through the eval cache; a binary score is
    sim(positive) - sim(closest opposite state), whatever `negative_weight`."""
    direct = model.attribute_scores(data.images, attribute)
    if direct is not None:
        return direct
    require(getattr(model, "has_text", False), f"model {model.name} has no text tower and no {attribute} expert")
    img = torch.from_numpy(np.ascontiguousarray(ctx.image_embeddings(model, data), dtype=np.float32))
    head = build_head(attribute, lambda prompts: _class_embedding(ctx, model, prompts), negative_weight)
    scores = head.scores(img).numpy()
    cal = calibration_of(model, attribute, negative_weight)
    if head.binary:  # a calibrated binary decision is "score > fitted threshold": shift it to 0
        return scores[:, 0] - (cal.threshold if cal is not None else 0.0)
    return scores


def calibration_of(model: Any, attribute: str, negative_weight: float) -> Any:
    """The model's fitted calibration of `attribute` (facevlm.clip.calibration), if it has one for
    these prompts."""
    cal = getattr(model, "calibration", None)
    return None if cal is None else cal.get(attribute, prompts_sha(attribute, negative_weight))


def metric_fn(
    model: Any, data: Any, attributes: list[str], ctx: Context, negative_weight: float
) -> tuple[MetricFn, str]:
    """The combined metric function over all images, and its default headline metric."""
    fns: list[MetricFn] = []
    binary = [a for a in attributes if VOCABULARY[a].kind == "binary"]
    headline = ""
    for attribute in attributes:
        spec = VOCABULARY.get(attribute)
        if spec is None or spec.kind == "numeric":
            raise FacevlmError(f"zeroshot: attribute {attribute!r} is not a categorical/binary vocabulary attribute")
        if spec.kind == "binary":
            continue
        labels_text = data.labels(attribute)
        index = {v: i for i, v in enumerate(spec.values)}
        labels = np.asarray([index.get(v, -1) for v in labels_text], dtype=np.int64)
        scores = attribute_scores(model, data, attribute, ctx, negative_weight)
        fns.append(prefixed(restricted(classification_fn(scores, labels, spec.values), labels >= 0), f"{attribute}/"))
        headline = headline or f"{attribute}/balanced_accuracy"
    if binary:
        scores = np.stack([attribute_scores(model, data, a, ctx, negative_weight) for a in binary], axis=1)
        targets = np.stack(
            [np.where(data.labels(a) == "true", 1, np.where(data.labels(a) == "false", 0, -1)) for a in binary], axis=1
        )
        fns.append(multilabel_fn(scores, targets, binary))
        headline = headline or "mAP"
    return merged(fns), headline


def run(model: Any, data: Any, cfg: Any, ctx: Context) -> list[TaskResult]:
    require(hasattr(model, "encode_images"), f"model {model.name} is a chat model (use the vqa task)")
    attributes = list(cfg.attributes) or default_attributes(data)
    if not attributes:
        raise FacevlmError(f"zeroshot: dataset {data.name} has no labelled categorical/binary attributes")
    missing = [a for a in attributes if a not in data.attributes]
    if missing:
        raise FacevlmError(f"zeroshot: dataset {data.name} has no labels for {', '.join(missing)}")
    fn, headline = metric_fn(model, data, attributes, ctx, cfg.negative_weight)
    items = np.arange(len(data))
    part = Part(fn, items, ctx.group_labels(data))
    extra: dict[str, Any] = {"attributes": attributes}
    fitted = {a: calibration_of(model, a, cfg.negative_weight) for a in attributes}
    if any(c is not None for c in fitted.values()):
        # what the calibrated model would ship: unreliable attributes are answered "uncertain", so their
        # accuracies above are of decisions the model does not assert
        extra["calibration"] = {
            a: {k: getattr(c, k) for k in ("threshold", "scale", "reliable", "cv_accuracy", "majority_accuracy")}
            for a, c in fitted.items()
            if c is not None
        }
        extra["uncertain"] = [a for a, c in fitted.items() if c is not None and not c.reliable]
    return [ctx.score(TASK, data.name, cfg.headline or headline, [part], extra)]
