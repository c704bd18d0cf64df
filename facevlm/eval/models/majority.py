"""The majority baseline: for every attribute, the most frequent ground-truth value of a *training*
split (default: real-train), guessed for every face. It is the bar the issue compares every shipped
decision against: an attribute decision that does not beat it tells a user nothing the base rates
do not. The class is taken from a training split, never from the split being scored, because a
shipped rule can only know its training data (on the real set the train and dev majorities agree
for every attribute eval/real.yaml scores, so the choice does not move the numbers)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from facevlm.eval.models.base import EmbeddingModel, ModelSpec
from facevlm.schema import VOCABULARY


def majority_values(records: Any) -> dict[str, str]:
    """attribute -> most frequent ground-truth value (ties: the value first in schema order)."""
    counts: dict[str, Counter] = {}
    for rec in records:
        for a in rec.attributes:
            if a.origin == "gt" and a.name in VOCABULARY and VOCABULARY[a.name].kind != "numeric":
                counts.setdefault(a.name, Counter())[a.value] += 1
    out = {}
    for name, c in counts.items():
        order = {v: i for i, v in enumerate(VOCABULARY[name].values)}
        out[name] = min(c, key=lambda v: (-c[v], order.get(v, len(order))))
    return out


class MajorityModel(EmbeddingModel):
    """Options: `dataset` (stored dataset, default "real") and `split` (default "train")."""

    has_text = False

    def __init__(self, spec: ModelSpec):
        from facevlm.data.store import iter_records, load_records

        self.dataset = str(spec.options.get("dataset", "real"))
        self.split = str(spec.options.get("split", "train"))
        self.majority = majority_values(iter_records(load_records(self.dataset, self.split)))
        self.name, self.pretrained, self.batch_size = spec.name, f"majority of {self.dataset}[{self.split}]", 1

    def fingerprint(self) -> str:
        return f"majority-{self.dataset}-{self.split}-" + "-".join(f"{k}={v}" for k, v in sorted(self.majority.items()))

    def _encode_images(self, images: Sequence[Any]) -> np.ndarray:
        return np.ones((len(images), 1), dtype=np.float32)  # one constant vector: no face is told apart

    def attribute_scores(self, images: Sequence[Any], attribute: str) -> np.ndarray | None:
        """Constant scores: one-hot of the majority class [N, C], or +-1 for a binary attribute [N]
        (its AP is then that of an arbitrary order, i.e. about the base rate)."""
        value = self.majority.get(attribute)
        if value is None:
            return None
        spec = VOCABULARY[attribute]
        if spec.kind == "binary":
            return np.full(len(images), 1.0 if value == "true" else -1.0, dtype=np.float32)
        row = (np.asarray(spec.values) == value).astype(np.float32)
        return np.tile(row, (len(images), 1))
