"""The embedded default backend: one FAISS index file inside the gallery directory.

Exact inner-product search (IndexFlatIP) until the gallery is large, then IVF (`index: auto`); HNSW on
request. The file is a cache: it is written atomically (tmp file + rename) on `flush`, and the store
rebuilds it from the SQLite-held vectors whenever its ids disagree with the committed faces.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import faiss
import numpy as np

from facevlm.errors import FacevlmError
from facevlm.index.backends import BackendConfig, as_ids, as_matrix

INDEX_KINDS = ("auto", "flat", "ivf", "hnsw")


def choose_kind(cfg: BackendConfig, n: int) -> str:
    """Exact while brute force is cheap (~3 ms/query at 100k, 256-d); IVF beyond `exact_max`."""
    if cfg.index not in INDEX_KINDS:
        raise FacevlmError(f"backend.index: {cfg.index!r} is not one of {', '.join(INDEX_KINDS)}")
    if cfg.index != "auto":
        return cfg.index
    return "ivf" if n > cfg.exact_max else "flat"


def build_index(kind: str, dim: int, cfg: BackendConfig, train: np.ndarray | None = None) -> faiss.Index:
    """An empty index of `kind`; IVF is trained on `train` (k-means centroids need data)."""
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efSearch = cfg.ef_search
        return faiss.IndexIDMap2(inner)
    if kind == "ivf":
        n = 0 if train is None else len(train)
        nlist = int(min(65536, max(1, 4 * math.sqrt(max(n, 1)))))
        nlist = max(1, min(nlist, n // 39 if n >= 39 else 1))  # FAISS wants >= 39 points per centroid
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        # k-means cost grows with the sample: 64 points per centroid is inside FAISS's advice (39-256)
        # and trains a 1M-vector, 4000-list index in minutes instead of most of an hour on 2 cores.
        per_list = 64
        sample = (
            train
            if n <= per_list * nlist
            else train[np.random.default_rng(0).choice(n, per_list * nlist, replace=False)]
        )
        if n:
            index.train(np.ascontiguousarray(sample))
        index.nprobe = min(cfg.nprobe, nlist)
        return index
    raise FacevlmError(f"unknown FAISS index kind {kind!r}")


class FaissBackend:
    """A FAISS index persisted at `path`; see the module docstring for the durability contract."""

    def __init__(self, path: Path, dim: int, cfg: BackendConfig | None = None):
        self.path = Path(path)
        self.dim = dim
        self.cfg = cfg or BackendConfig()
        self.dirty = False
        self.index = self._load() if self.path.is_file() else build_index(choose_kind(self.cfg, 0), dim, self.cfg)

    def _load(self) -> faiss.Index:
        try:
            index = faiss.read_index(str(self.path))
        except RuntimeError:
            # A damaged cache is not data loss: start empty, the store's consistency check rebuilds it.
            return build_index(choose_kind(self.cfg, 0), self.dim, self.cfg)
        if index.d != self.dim:
            return build_index(choose_kind(self.cfg, 0), self.dim, self.cfg)
        self._tune(index)
        return index

    def _tune(self, index: faiss.Index) -> None:
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.nprobe = min(self.cfg.nprobe, ivf.nlist)
        inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else None
        if isinstance(inner, faiss.IndexHNSWFlat):
            inner.hnsw.efSearch = self.cfg.ef_search

    @property
    def kind(self) -> str:
        if faiss.try_extract_index_ivf(self.index) is not None:
            return "ivf"
        inner = faiss.downcast_index(self.index.index)
        return "hnsw" if isinstance(inner, faiss.IndexHNSWFlat) else "flat"

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = as_ids(ids)
        if len(ids):
            self.index.add_with_ids(as_matrix(vectors, self.dim), ids)
            self.dirty = True

    def remove(self, ids: np.ndarray) -> None:
        ids = as_ids(ids)
        if not len(ids):
            return
        if self.kind == "hnsw":  # HNSW graphs cannot drop nodes: rebuild from the survivors
            keep_ids, keep_vecs = self._contents()
            mask = ~np.isin(keep_ids, ids)
            self.rebuild(keep_ids[mask], keep_vecs[mask], kind="hnsw")
            return
        self.index.remove_ids(faiss.IDSelectorBatch(ids))
        self.dirty = True

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = as_matrix(queries, self.dim)
        if self.index.ntotal == 0 or (allowed is not None and len(allowed) == 0):
            return (np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64))
        params = None
        if allowed is not None:
            sel = faiss.IDSelectorBatch(as_ids(allowed))
            ivf = faiss.try_extract_index_ivf(self.index)
            params = (
                faiss.SearchParametersIVF(sel=sel, nprobe=ivf.nprobe)
                if ivf is not None
                else faiss.SearchParameters(sel=sel)
            )
        scores, ids = self.index.search(queries, k, params=params)
        return scores, ids

    def count(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        ivf = faiss.try_extract_index_ivf(self.index)
        if ivf is None:
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists = ivf.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(ivf.nlist)
            if lists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def _contents(self) -> tuple[np.ndarray, np.ndarray]:
        """All (ids, vectors) of an IDMap2 index (flat or HNSW keep their vectors)."""
        ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        vecs = (
            self.index.index.reconstruct_n(0, self.index.index.ntotal)
            if len(ids)
            else np.zeros((0, self.dim), np.float32)
        )
        return ids, np.asarray(vecs, np.float32)

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray, kind: str | None = None) -> None:
        ids, vectors = as_ids(ids), as_matrix(vectors, self.dim)
        kind = kind or choose_kind(self.cfg, len(ids))
        self.index = build_index(kind, self.dim, self.cfg, train=vectors if kind == "ivf" else None)
        self.add(ids, vectors)
        self.dirty = True
        self.flush()

    def flush(self) -> None:
        """Write the index atomically; switch an auto gallery from exact to IVF once it outgrows exact."""
        if self.cfg.index == "auto" and self.kind == "flat" and self.count() > self.cfg.exact_max:
            ids, vecs = self._contents()
            self.rebuild(ids, vecs, kind="ivf")
            return
        if not self.dirty:
            return
        tmp = self.path.with_suffix(".faiss.tmp")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self.dirty = False

    def close(self) -> None:
        self.flush()
