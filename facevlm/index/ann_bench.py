"""The ANN rows of `facevlm bench search`: recall@10 against exact search, ms/query, build time and bytes
per face of FAISS indexes at 1M vectors with the structure of real face embeddings, in both vector spaces
of a gallery.

Vectors: `facevlm.index.synthetic.IdentitySpread` (a two-covariance model) fitted on
- identity space: the identity model's descriptors (dlib, 128-d, unit length as galleries index them) of
  the hand-labelled real photos (stored dataset `real`, 167 faces of 110 people);
- FaceCLIP space: FaceCLIP image vectors (256-d) of rendered synthetic faces (stored dataset `synthetic`,
  split test: 2,192 faces of 399 identities).
N faces of N / per_identity people are drawn; queries are new photos of people in the gallery. A first
table says what the generator reproduces (genuine/impostor distances, rank-1) next to the real vectors.

Timing: one query at a time (what a gallery search does), median over `timed` queries, with FAISS on 1 and
on 2 OpenMP threads; recall over all queries. The gallery kinds are built by
`faiss_backend.build_index` exactly as galleries build them (IVF variants share one trained coarse
quantizer here, and each one's build time includes that k-means); IVF-PQ with exact re-ranking (IndexRefineFlat)
is built here only, being no gallery kind. Bytes/face: the serialised index over N.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import faiss
import numpy as np

from facevlm.index.backends import BackendConfig
from facevlm.index.backends.faiss_backend import AUTO_PROBE_SHARE, build_index, nlist_for
from facevlm.index.synthetic import IdentitySpread, compare

SPACES = ("identity", "faceclip")
KINDS = ("flat", "sq8", "ivf", "ivf_sq8", "ivfpq_refine", "hnsw")
K = 10


def measured_spread(
    space: str, faceclip: str, identity_model: str | None = None, keep: Path | None = None
) -> tuple[IdentitySpread, list[str]]:
    """The spread of `space` fitted on real embeddings, and Markdown rows comparing real vs drawn. `keep`: a
    folder where the fit and its rows are saved, and read back by later runs (`<space>.npz`, `.md`) rather
    than embedding the faces again; delete them when the model or the data change."""
    from facevlm.index.cluster_bench import faceclip_set, identity_set

    if keep is not None and (keep / f"{space}.npz").is_file():
        return IdentitySpread.load(keep / f"{space}.npz"), (keep / f"{space}.md").read_text().splitlines()
    if space == "identity":
        data = identity_set("real", None, identity_model)
    else:
        data = faceclip_set("synthetic", "test", faceclip)
    spread = IdentitySpread.fit(data.vectors, data.identities, data.name)
    rows = []
    for label, summary in zip(("real", "drawn"), compare(spread, data.vectors, data.identities)):
        s = {k: float(v) for k, v in summary.items()}
        rows.append(
            f"| {data.name}, {label} | {len(data.vectors)} / {len(set(data.identities))} | {s['gen_p5']:.3f} / "
            f"{s['gen_p50']:.3f} / {s['gen_p95']:.3f} | {s['imp_p1']:.3f} / {s['imp_p5']:.3f} / {s['imp_p50']:.3f} "
            f"| {s['rank1']:.3f} |"
        )
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        spread.save(keep / f"{space}.npz")
        (keep / f"{space}.md").write_text("\n".join(rows) + "\n")
    return spread, rows


def _latency(index: faiss.Index, queries: np.ndarray, threads: int, params: faiss.SearchParameters | None) -> float:
    """Median ms of one-query searches on `threads` OpenMP threads."""
    faiss.omp_set_num_threads(threads)
    took = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q[None], K, params=params)
        took.append(time.perf_counter() - t0)
    return float(np.median(took)) * 1e3


def _recall(index: faiss.Index, queries: np.ndarray, truth: np.ndarray, params: faiss.SearchParameters | None) -> float:
    _, got = index.search(queries, K, params=params)
    return float(np.mean([len(set(g) & set(t)) / K for g, t in zip(got, truth)]))


class _Runner:
    """Times and scores indexes against one exact baseline."""

    def __init__(self, space: str, base: np.ndarray, queries: np.ndarray, timed: int, threads: Sequence[int]):
        self.space, self.base, self.queries, self.threads = space, base, queries, list(threads)
        self.timed = queries[:timed]
        self.ids = np.arange(len(base), dtype=np.int64)
        self.exact_ms: float | None = None
        self.truth: np.ndarray | None = None

    def row(self, label: str, setting: str, index: faiss.Index, build_s: float, params=None) -> str:
        restore = faiss.omp_get_max_threads()
        recall = 1.0 if self.truth is None else _recall(index, self.queries, self.truth, params)
        ms = [_latency(index, self.timed, t, params) for t in self.threads]
        faiss.omp_set_num_threads(restore)
        if self.exact_ms is None:
            self.exact_ms = ms[0]
        size = len(faiss.serialize_index(index)) / len(self.base)
        return (
            f"| {self.space} | {label} | {setting} | {recall:.4f} | "
            + " | ".join(f"{m:.2f}" for m in ms)
            + f" | {self.exact_ms / ms[0]:.1f}× | {build_s:.0f} s | {size:.0f} |"
        )


def ann_rows(
    spread: IdentitySpread,
    space: str,
    n: int,
    per_identity: float,
    queries: int,
    timed: int,
    nprobes: Sequence[int],
    efs: Sequence[int],
    kinds: Sequence[str],
    threads: Sequence[int] = (1, 2),
) -> Iterator[str]:
    """Markdown rows, each yielded when measured: | space | index | setting | recall@10 | ms/query per thread
    count | speed-up | build | bytes/face |; exact search (the baseline) first."""
    base, _, qs, _ = spread.gallery(n, per_identity, queries)
    dim = base.shape[1]
    run = _Runner(f"{space} {dim}-d, {n:,}", base, qs, timed, threads)
    cfg = BackendConfig(index="auto")
    t0 = time.perf_counter()
    exact = build_index("flat", dim, cfg)
    exact.add_with_ids(base, run.ids)
    exact_row = run.row("exact (IndexFlatIP)", "—", exact, time.perf_counter() - t0)
    _, run.truth = exact.search(qs, K)
    if "flat" in kinds:
        yield exact_row
    del exact
    if "sq8" in kinds:
        t0 = time.perf_counter()
        index = build_index("sq8", dim, cfg, train=base)
        index.add_with_ids(base, run.ids)
        yield run.row("SQ8 (exact scan of 8-bit codes)", "—", index, time.perf_counter() - t0)
        del index
    nlist = nlist_for(n)
    auto_probe = math.ceil(nlist * AUTO_PROBE_SHARE)
    probes = sorted({*nprobes, auto_probe})
    ivf_kinds = [k for k in ("ivf", "ivf_sq8", "ivfpq_refine") if k in kinds]
    if ivf_kinds:
        t0 = time.perf_counter()
        trained = build_index("ivf", dim, cfg, train=base)  # IVF-Flat has no codes to train: this is the k-means
        coarse_s = time.perf_counter() - t0
        coarse = faiss.extract_index_ivf(trained).quantizer
    for kind in ivf_kinds:
        t0 = time.perf_counter()
        index, label = _ivf(kind, dim, cfg, base, run.ids, faiss.clone_index(coarse))
        build_s = coarse_s + time.perf_counter() - t0
        for p in probes:
            tag = f"nprobe={p}" + (" (auto)" if p == auto_probe and kind == "ivf" else "")
            if kind == "ivfpq_refine":
                for k_factor in (8, 32):
                    params = faiss.IndexRefineSearchParameters(k_factor=k_factor)
                    params.base_index_params = faiss.SearchParametersIVF(nprobe=p)
                    yield run.row(label, f"{tag}, k_factor={k_factor}", index, build_s, params)
            else:
                yield run.row(label, tag, index, build_s, faiss.SearchParametersIVF(nprobe=p))
        del index
    if "hnsw" in kinds:
        t0 = time.perf_counter()
        index = build_index("hnsw", dim, cfg)
        index.add_with_ids(base, run.ids)
        build_s = time.perf_counter() - t0
        for ef in efs:
            params = faiss.SearchParametersHNSW(efSearch=ef)
            yield run.row(f"HNSW{cfg.hnsw_m},Flat", f"efSearch={ef}", index, build_s, params)
        del index


def _ivf(
    kind: str, dim: int, cfg: BackendConfig, base: np.ndarray, ids: np.ndarray, quantizer: faiss.Index
) -> tuple[faiss.Index, str]:
    """A filled IVF index of `kind` on a trained coarse `quantizer`, and its row label."""
    nlist = quantizer.ntotal
    if kind == "ivfpq_refine":
        m = dim // 4  # 4 dims per byte: finer codes saturate at IVF-Flat's recall (measured at 100k)
        pq = faiss.IndexIVFPQ(quantizer, dim, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
        pq.train(base[np.random.default_rng(0).choice(len(base), min(len(base), 64 * nlist), replace=False)])
        index = faiss.IndexRefineFlat(pq)
        index.add(base)  # ids = row numbers (IndexRefine has no add_with_ids)
        return index, f"IVF{nlist},PQ{m} + IndexRefineFlat"
    index = build_index(kind, dim, cfg, train=base, quantizer=quantizer)
    index.add_with_ids(base, ids)
    return index, f"IVF{nlist},{'Flat' if kind == 'ivf' else 'SQ8'}"
