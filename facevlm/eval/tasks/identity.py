"""Identity retrieval (leave-one-out rank-1) and verification (ROC AUC, TAR at FAR) on faces with
identity labels. Verification uses all same/different pairs, or a seeded sample of `max_pairs`;
its bootstrap resamples pairs, rank-1's resamples query faces."""

from __future__ import annotations

from typing import Any

import numpy as np

from facevlm.eval.metrics import identity_nn_hits, mean_fn, verification_fn
from facevlm.eval.tasks import Context, Part, TaskResult, require

TASK = "identity"


def pairs(n: int, max_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (i, j), i < j: all pairs, or `max_pairs` distinct ones drawn at random."""
    total = n * (n - 1) // 2
    if max_pairs <= 0 or total <= max_pairs:
        return np.triu_indices(n, k=1)
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n, size=(2, int(max_pairs * 1.2) + 16))
    i, j = np.minimum(a, b), np.maximum(a, b)
    flat = np.unique((i * n + j)[i != j])
    flat = rng.permutation(flat)[:max_pairs]
    flat.sort()
    return flat // n, flat % n


def run(model: Any, data: Any, cfg: Any, ctx: Context) -> list[TaskResult]:
    require(hasattr(model, "encode_images"), f"model {model.name} is a chat model")
    labelled = np.flatnonzero(data.identities != "")
    require(len(labelled) >= 2, f"dataset {data.name} has no identity labels")
    emb = ctx.image_embeddings(model, data)[labelled]
    ids = data.identities[labelled]
    queries, hits = identity_nn_hits(emb, ids)
    require(len(queries) > 0, f"dataset {data.name}: no identity has two faces")
    i, j = pairs(len(labelled), cfg.max_pairs, ctx.seed)
    scores = np.einsum("nd,nd->n", emb[i], emb[j])
    genuine = ids[i] == ids[j]
    hit_full = np.zeros(len(labelled))
    hit_full[queries] = hits
    groups = {a: v[labelled] for a, v in ctx.group_labels(data).items()}
    parts = [Part(mean_fn(hit_full, "rank1"), queries, groups),
             Part(verification_fn(scores, genuine, tuple(cfg.fars)), np.arange(len(scores)))]
    return [ctx.score(TASK, data.name, cfg.headline or "rank1", parts,
                      {"n_pairs": int(len(scores)), "n_genuine": int(genuine.sum()), "n_queries": int(len(queries))})]
