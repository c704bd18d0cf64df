"""Identity retrieval (leave-one-out rank-1) and verification (ROC AUC, TAR at FAR) on faces with
identity labels. Verification uses a published pairs file (LFW's protocol) when the suite names one,
else all same/different pairs or a seeded sample of `max_pairs`;
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


def protocol_pairs(data: Any, labelled: np.ndarray, pairs_file: str) -> tuple[np.ndarray, np.ndarray]:
    """A published verification protocol (LFW's pairs.txt / pairsDevTest.txt) as index arrays into
    `labelled`; pairs naming faces missing from the set are an error, never silently dropped."""
    import os
    from pathlib import Path

    from facevlm.data.adapters.lfw import read_pairs
    from facevlm.errors import FacevlmError

    path = Path(os.path.expandvars(pairs_file)).expanduser()
    if not path.is_file():
        raise FacevlmError(f"identity: pairs_file {pairs_file} -> {path}: no such file")
    position = {data.ids[k]: n for n, k in enumerate(labelled)}
    i, j = [], []
    for p in read_pairs(path):
        a = f"lfw/{p.name1}/{p.name1}_{p.index1:04d}.jpg"
        b = f"lfw/{p.name2}/{p.name2}_{p.index2:04d}.jpg"
        if a not in position or b not in position:
            raise FacevlmError(
                f"{pairs_file}: pair ({a}, {b}) is not in dataset {data.name} [{data.split}]; "
                "load the split the pairs file belongs to"
            )
        i.append(position[a])
        j.append(position[b])
    return np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)


def run(model: Any, data: Any, cfg: Any, ctx: Context) -> list[TaskResult]:
    require(hasattr(model, "encode_images"), f"model {model.name} is a chat model")
    labelled = np.flatnonzero(data.identities != "")
    require(len(labelled) >= 2, f"dataset {data.name} has no identity labels")
    emb = ctx.image_embeddings(model, data)[labelled]
    ids = data.identities[labelled]
    queries, hits = identity_nn_hits(emb, ids)
    require(len(queries) > 0, f"dataset {data.name}: no identity has two faces")
    if cfg.pairs_file:
        i, j = protocol_pairs(data, labelled, cfg.pairs_file)
    else:
        i, j = pairs(len(labelled), cfg.max_pairs, ctx.seed)
    scores = np.einsum("nd,nd->n", emb[i], emb[j])
    genuine = ids[i] == ids[j]
    hit_full = np.zeros(len(labelled))
    hit_full[queries] = hits
    groups = {a: v[labelled] for a, v in ctx.group_labels(data).items()}
    parts = [
        Part(mean_fn(hit_full, "rank1"), queries, groups),
        Part(verification_fn(scores, genuine, tuple(cfg.fars)), np.arange(len(scores))),
    ]
    return [
        ctx.score(
            TASK,
            data.name,
            cfg.headline or "rank1",
            parts,
            {"n_pairs": int(len(scores)), "n_genuine": int(genuine.sum()), "n_queries": int(len(queries))},
        )
    ]
