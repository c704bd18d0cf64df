"""Vector backends behind one interface, so a gallery can move from the embedded FAISS index to a Milvus
cluster without touching the store or the search executor.

The SQLite metadata of a gallery is the source of truth and keeps every embedding; a backend is a
rebuildable cache of those vectors that answers nearest-neighbour queries. That is what makes a crash
at any point of an ingest recoverable: at start-up the store compares the backend's ids with the
committed ones and rebuilds the backend if they disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from facevlm.errors import FacevlmError


@dataclass
class BackendConfig:
    """How vectors are indexed. `kind`: faiss (embedded, default) or milvus (Milvus Lite file in the
    gallery, or a server `uri`). `index`: auto | flat | sq8 | ivf | ivf_sq8 | hnsw; auto stays exact up
    to `exact_max` vectors, then IVF-Flat with 4·sqrt(N) lists and a measured nprobe (3/32 of the lists;
    recall@10 >= 0.99 at >= 6x exact's speed at 1M in both spaces, docs/benchmarks.md), ignoring `nprobe`;
    an explicit `ivf` uses `nprobe` (FAISS only; Milvus picks its own index)."""

    kind: str = "faiss"
    index: str = "auto"
    exact_max: int = 200_000
    nprobe: int = 32
    hnsw_m: int = 32
    ef_search: int = 128
    uri: str = ""  # milvus: "" = Milvus Lite file inside the gallery; or http://host:19530
    token: str = ""  # milvus server token (user:password), if any
    collection: str = "faces"


class VectorBackend(Protocol):
    """Inner-product search over L2-normalised float32 vectors keyed by int64 face ids."""

    dim: int

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores [Q, k], ids [Q, k]); missing slots have id -1. `allowed` restricts the result to
        those ids (metadata filters) inside the index rather than by over-fetching."""
        ...

    def count(self) -> int: ...

    def ids(self) -> np.ndarray: ...

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


# A gallery's vector spaces: FaceCLIP ("faces", the joint image-text space) and "identity" (the identity
# expert's descriptors, facevlm.index.identity_space). Each is its own backend instance: a FAISS file, or a
# Milvus collection (the same Milvus Lite file or server holds both).
SPACES = {"faces": ("vectors.faiss", ""), "identity": ("identity.faiss", "_identity")}


def open_backend(cfg: BackendConfig, gallery_dir: Path, dim: int, space: str = "faces") -> VectorBackend:
    """The backend named by `cfg.kind` for vector space `space`, persisted inside `gallery_dir` (or on a
    Milvus server)."""
    if space not in SPACES:
        raise FacevlmError(f"vector space {space!r} is not one of {', '.join(SPACES)}")
    file_name, suffix = SPACES[space]
    if cfg.kind == "faiss":
        from facevlm.index.backends.faiss_backend import FaissBackend

        return FaissBackend(gallery_dir / file_name, dim, cfg)
    if cfg.kind == "milvus":
        from dataclasses import replace

        from facevlm.index.backends.milvus_backend import MilvusBackend

        uri = cfg.uri or str(gallery_dir / "milvus.db")
        return MilvusBackend(uri, dim, replace(cfg, collection=cfg.collection + suffix))
    raise FacevlmError(f"backend.kind: {cfg.kind!r} is not one of faiss, milvus")


def exact_search(queries: np.ndarray, ids: np.ndarray, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """Exact top-k (id, inner product) per query over a small candidate set held in memory: what a
    gallery answers from SQLite when a filter has already narrowed the faces down, so an approximate
    index cannot miss any of them."""
    if not len(ids):
        return [[] for _ in queries]
    scores = np.asarray(queries, np.float32) @ np.asarray(vectors, np.float32).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[(int(ids[j]), float(scores[q, j])) for j in order[q]] for q in range(len(scores))]


def as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    """C-contiguous float32 [N, dim]; a wrong width is a caller bug worth a clear message."""
    arr = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))
    return arr


def as_ids(ids: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
