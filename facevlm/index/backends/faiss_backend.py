"""The embedded default backend: one FAISS index file inside the gallery directory.

Index kinds (`backend.index`): `flat` (exact IndexFlatIP), `sq8` (exact scan of 8-bit scalar-quantised
codes), `ivf` (IVF-Flat), `ivf_sq8` (IVF over 8-bit codes), `hnsw` (HNSW-Flat; a delete rebuilds the
graph), and `auto`, set from `facevlm bench search` on 1M vectors with the structure of real face embeddings
(facevlm.index.synthetic.IdentitySpread; docs/benchmarks.md, "ANN at 1M"). One query at a time, one
thread, 2 shared cores:

- identity space (dlib, 128-d): exact 18.5 ms; auto (IVF4000,Flat nprobe=375) recall@10 0.995 in 2.9 ms
  (6.3x), built in 66 s, 522 bytes/face; HNSW32 efSearch=256: 0.994, 0.8 ms, 157 s, 792 bytes/face;
- FaceCLIP space (256-d): exact 39.7 ms; auto recall@10 1.000 in 4.3 ms (9.3x), 69 s, 1036 bytes/face;
  HNSW32 efSearch=128: 0.998, 0.5 ms, 199 s, 1304 bytes/face.

At 250k (nlist 2000, nprobe 188): recall@10 0.997 / 1.000 at 5.8x / 7.8x exact's speed. 8-bit codes cap
recall@10 below 0.99 in the identity space (SQ8 0.984, IVF-SQ8 <= 0.985; FaceCLIP 0.982 / 0.989) for a
4x smaller index; IVF-PQ with exact re-ranking (IndexRefineFlat) reaches 0.974 (identity) and needs more
memory than IVF-Flat. So `auto` is exact up to `exact_max` faces (a few ms per query, recall 1), then
IVF-Flat with nlist = 4·sqrt(N) and nprobe = `AUTO_PROBE_SHARE` (3/32) of the lists: >= 0.99 at 4-9x
exact's speed in both spaces, deletes in place (erasure stays cheap; HNSW, faster still, rebuilds its graph
on every delete and builds 2-3x slower), and about exact's memory (vectors + 8-byte ids). An explicit `ivf`
uses `nprobe` from the config instead.

A kind that has to be trained (sq8, ivf, ivf_sq8) is an exact index until the gallery holds `MIN_TRAIN`
faces, then is built at the next `flush`. An auto gallery is rebuilt as IVF when it outgrows `exact_max`,
and again (new lists) each time it has grown about 4x past the size its lists were made for.

The file is a cache: it is written atomically (tmp file + rename) on `flush`, and the store rebuilds it
from the SQLite-held vectors whenever its ids disagree with the committed faces.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import faiss
import numpy as np

from facevlm.errors import FacevlmError
from facevlm.index.backends import BackendConfig, as_ids, as_matrix

INDEX_KINDS = ("auto", "flat", "sq8", "ivf", "ivf_sq8", "hnsw")
TRAINED_KINDS = ("sq8", "ivf", "ivf_sq8")
MIN_TRAIN = 1000  # faces before a trained kind replaces the exact index: k-means and SQ ranges need data
AUTO_PROBE_SHARE = 3 / 32  # auto's nprobe = this share of nlist (docs/benchmarks.md, "ANN at 1M")
TRAIN_PER_LIST = 64  # k-means sample per IVF list: inside FAISS's advice (39-256), minutes not an hour at 1M


def choose_kind(cfg: BackendConfig, n: int) -> str:
    """The kind a gallery of `n` faces is built as: exact while brute force is cheap (`exact_max`), IVF-Flat
    beyond it (`auto`); a requested trained kind waits for `MIN_TRAIN` faces."""
    if cfg.index not in INDEX_KINDS:
        raise FacevlmError(f"backend.index: {cfg.index!r} is not one of {', '.join(INDEX_KINDS)}")
    kind = cfg.index if cfg.index != "auto" else ("ivf" if n > cfg.exact_max else "flat")
    return "flat" if kind in TRAINED_KINDS and n < MIN_TRAIN else kind


def nlist_for(n: int) -> int:
    """IVF lists for `n` vectors: 4·sqrt(n) (FAISS's guideline), at least 39 training points per list."""
    nlist = int(min(65536, max(1, 4 * math.sqrt(max(n, 1)))))
    return max(1, min(nlist, n // 39 if n >= 39 else 1))


def nprobe_for(cfg: BackendConfig, nlist: int) -> int:
    """Lists visited per query: `auto` uses the measured share of nlist, an explicit kind `cfg.nprobe`."""
    probes = math.ceil(nlist * AUTO_PROBE_SHARE) if cfg.index == "auto" else cfg.nprobe
    return max(1, min(probes, nlist))


def build_index(
    kind: str, dim: int, cfg: BackendConfig, train: np.ndarray | None = None, quantizer: faiss.Index | None = None
) -> faiss.Index:
    """An empty index of `kind`, trained on `train` where the kind needs it. `quantizer`: an already
    trained IVF coarse quantizer to reuse (a benchmark building several IVF kinds on one data set runs
    k-means once); its nlist then wins over `nlist_for`."""
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efSearch = cfg.ef_search
        return faiss.IndexIDMap2(inner)
    if kind not in TRAINED_KINDS:
        raise FacevlmError(f"unknown FAISS index kind {kind!r}")
    if train is None or not len(train):
        raise FacevlmError(f"a {kind} index needs training vectors")
    train = np.ascontiguousarray(train, dtype=np.float32)
    if kind == "sq8":
        index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        index.train(train)
        return faiss.IndexIDMap2(index)
    if quantizer is None:
        nlist = nlist_for(len(train))
        quantizer = faiss.IndexFlatIP(dim)
    elif quantizer.ntotal:
        nlist = quantizer.ntotal
    else:
        raise FacevlmError("build_index: the quantizer to reuse is not trained")
    if kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        qt = faiss.ScalarQuantizer.QT_8bit
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, qt, faiss.METRIC_INNER_PRODUCT)
    size = TRAIN_PER_LIST * nlist
    sample = train if len(train) <= size else train[np.random.default_rng(0).choice(len(train), size, replace=False)]
    index.train(sample)  # with a trained `quantizer` this trains the codes only
    index.nprobe = nprobe_for(cfg, nlist)
    return index


def kind_of(index: faiss.Index) -> str:
    """The INDEX_KINDS name of a built index."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        return "ivf_sq8" if isinstance(faiss.downcast_index(ivf), faiss.IndexIVFScalarQuantizer) else "ivf"
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexHNSWFlat):
        return "hnsw"
    return "sq8" if isinstance(inner, faiss.IndexScalarQuantizer) else "flat"


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
            ivf.nprobe = nprobe_for(self.cfg, ivf.nlist)
            return
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexHNSWFlat):
            inner.hnsw.efSearch = self.cfg.ef_search

    @property
    def kind(self) -> str:
        return kind_of(self.index)

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

    def _lists(self) -> list[int]:
        ivf = faiss.try_extract_index_ivf(self.index)
        return [i for i in range(ivf.nlist) if ivf.invlists.list_size(i)]

    def ids(self) -> np.ndarray:
        ivf = faiss.try_extract_index_ivf(self.index)
        if ivf is None:
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists = ivf.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy() for i in self._lists()]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def _contents(self) -> tuple[np.ndarray, np.ndarray]:
        """All (ids, vectors) of an index that keeps its vectors exactly: flat, HNSW, IVF-Flat."""
        ivf = faiss.try_extract_index_ivf(self.index)
        if ivf is None:
            ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
            inner = self.index.index
            vecs = inner.reconstruct_n(0, inner.ntotal) if len(ids) else np.zeros((0, self.dim), np.float32)
            return ids, np.asarray(vecs, np.float32)
        lists = ivf.invlists
        codes = [faiss.rev_swig_ptr(lists.get_codes(i), lists.list_size(i) * ivf.code_size) for i in self._lists()]
        vecs = np.concatenate([np.frombuffer(c.copy(), np.float32) for c in codes]) if codes else np.zeros(0)
        return self.ids(), vecs.reshape(-1, self.dim).astype(np.float32)

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray, kind: str | None = None) -> None:
        ids, vectors = as_ids(ids), as_matrix(vectors, self.dim)
        kind = kind or choose_kind(self.cfg, len(ids))
        self.index = build_index(kind, self.dim, self.cfg, train=vectors if kind in TRAINED_KINDS else None)
        self.add(ids, vectors)
        self.dirty = True
        self.flush()

    def _next_kind(self) -> str | None:
        """The kind to rebuild as at this flush, if any: exact -> the requested (or auto's) kind once there
        are enough faces; auto's IVF again with new lists once it has outgrown them (~4x)."""
        n, kind = self.count(), self.kind
        want = choose_kind(self.cfg, n)
        if kind == "flat" and want != "flat":
            return want
        outgrown = kind == "ivf" and nlist_for(n) >= 2 * faiss.extract_index_ivf(self.index).nlist
        return "ivf" if self.cfg.index == "auto" and outgrown else None

    def flush(self) -> None:
        """Write the index atomically, after rebuilding it when it has outgrown its kind (`_next_kind`)."""
        kind = self._next_kind()
        if kind is not None:
            ids, vecs = self._contents()
            self.rebuild(ids, vecs, kind=kind)
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
