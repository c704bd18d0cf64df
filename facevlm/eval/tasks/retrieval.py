"""Text->image and image->text retrieval over the dataset's captions.

Identical caption strings are merged into one text query whose positives are all the images that
carry it (template captions repeat a lot on face data), so several positives per query are the
normal case; image queries have all their own captions as positives. Bootstrap resamples queries.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facevlm.eval.metrics import rank_stats, retrieval_fn
from facevlm.eval.tasks import Context, Part, TaskResult, require

TASK = "zeroshot_retrieval"


def caption_index(captions: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """Unique caption texts and the [n_texts, n_images] positives matrix."""
    texts: dict[str, int] = {}
    pairs = []
    for i, caps in enumerate(captions):
        for c in caps:
            pairs.append((texts.setdefault(c, len(texts)), i))
    pos = np.zeros((len(texts), len(captions)), dtype=bool)
    for t, i in pairs:
        pos[t, i] = True
    return list(texts), pos


def run(model: Any, data: Any, cfg: Any, ctx: Context) -> list[TaskResult]:
    require(getattr(model, "has_text", False), f"model {model.name} has no text tower")
    has_caption = np.asarray([bool(c) for c in data.captions])
    require(has_caption.any(), f"dataset {data.name} has no captions (run `facevlm data caption`)")
    keep = np.flatnonzero(has_caption)
    texts, pos = caption_index([data.captions[i] for i in keep])
    img = ctx.image_embeddings(model, data)[keep]
    txt = ctx.text_embeddings(model, texts)
    sim = txt @ img.T
    ks = tuple(cfg.recall_k)
    t2i = retrieval_fn(rank_stats(sim, pos), "image_retrieval", ks)
    i2t = retrieval_fn(rank_stats(sim.T, pos.T), "text_retrieval", ks)
    groups = {a: v[keep] for a, v in ctx.group_labels(data).items()}
    # image->text first: its queries are images, so fairness groups (attributes of images) apply.
    parts = [Part(i2t, np.arange(len(keep)), groups), Part(t2i, np.arange(len(texts)))]
    return [
        ctx.score(
            TASK,
            data.name,
            cfg.headline or "text_retrieval_recall@1",
            parts,
            {"n_texts": len(texts), "n_images": int(len(keep))},
        )
    ]
