"""Group faces by person: cluster identity descriptors (`facevlm.vision.identity`, e.g. dlib's 128-d, raw as
galleries store them) so that faces closer than the "same person" distance end up together.

Well-kept algorithms, all cut by the same Euclidean `threshold` the verifier uses (for dlib: 0.6 on the
raw descriptors, `vision.identity`), so "these two faces are the same person" means the same thing in
`verify` and in `cluster`:

- `average` / `complete`: scikit-learn's agglomerative clustering with `distance_threshold`: clusters merge
  while their average / largest pairwise distance is under `threshold` (complete: every pair inside a
  cluster is closer than `threshold`).
- `single`: single linkage, i.e. the connected components of the threshold graph (faces joined when closer
  than `threshold`); chains people together once a crowd is dense enough.
- `chinese_whispers`: dlib's graph clustering (`dlib.chinese_whispers`, the algorithm of dlib's own face
  clustering example) on the unweighted threshold graph.
- `hdbscan`: scikit-learn's HDBSCAN (min_cluster_size 2, min_samples 1): density-based and threshold-free
  (`threshold` is not used). Its `cluster_selection_epsilon`, the one knob that would take the threshold,
  raises a TypeError on NumPy >= 2.4 in scikit-learn 1.9 (scikit-learn issue #33219). Noise points
  become singletons.

Scale. The threshold graph is built by exact FAISS range search in blocks (memory follows the edges). An
average/complete/single cluster never spans two connected components of that graph (two clusters whose
average, or largest, distance is under `threshold` have a pair under it), so linkage runs per component,
exactly, with an N x N matrix only as large as the largest component. A component over `DENSE_MAX` faces
(the graph percolates: a huge crowd at a loose threshold) is split by Chinese whispers instead, whose
memory is the edges'; `method="average"` etc. then raise rather than change algorithm behind the caller.

`auto` is chosen by measurement (`facevlm bench cluster`, figures in docs/benchmarks.md, "Clustering"):
see `AUTO_METHOD`. Labels are always 0..K-1 with no noise label: a face nobody resembles is a cluster of
one (a gallery UI lists it as "unique"), and clusters are numbered by size, largest first (ties: by
their first face), so the same vectors in the same order always give the same labels.
"""

from __future__ import annotations

import numpy as np

from facevlm.errors import FacevlmError

METHODS = ("auto", "average", "complete", "single", "chinese_whispers", "hdbscan")
DENSE_MAX = 20_000  # linkage holds a component's condensed distances: 1.6 GB of float64 at 20k faces
# Measured by `facevlm bench cluster` (docs/benchmarks.md, "Clustering"): at dlib's 0.6 on the real photos
# average linkage scores pairwise F1 0.82 / BCubed F1 0.86, Chinese whispers 0.61 / 0.79, complete 0.78 / 0.86.
AUTO_METHOD = "average"
_EDGE_BLOCK = 4096  # query rows per FAISS range search when building the threshold graph


def cluster_vectors(vectors: np.ndarray, *, threshold: float, method: str = "auto") -> np.ndarray:
    """Cluster labels (int64, 0..K-1, largest cluster first) for each row of `vectors` [N, D].

    `threshold`: the Euclidean distance, in the units of `vectors`, under which two faces are the same
    person (the identity model's verification threshold). An empty input gives an empty label array (a
    gallery with no unlabelled faces has no clusters); one vector is one cluster. `auto` is `AUTO_METHOD`,
    with Chinese whispers on any connected component over `DENSE_MAX` faces (see the module docstring).
    """
    if method not in METHODS:
        raise FacevlmError(f"cluster method {method!r} is not one of {', '.join(METHODS)}")
    if not np.isfinite(threshold) or threshold <= 0:
        raise FacevlmError(f"cluster threshold must be a positive distance, not {threshold}")
    x = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if x.ndim != 2:
        raise FacevlmError(f"cluster_vectors wants an [N, D] matrix, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise FacevlmError("cluster_vectors: vectors contain NaN or infinity")
    n = len(x)
    if n <= 1:
        return np.zeros(n, np.int64)
    if method == "hdbscan":
        if n > DENSE_MAX:
            raise FacevlmError(f"hdbscan needs an N x N distance matrix: {n:,} faces is over {DENSE_MAX:,}")
        return canonical(_hdbscan(x))
    i, j = neighbour_edges(x, threshold)
    components = _components(n, i, j)
    if method in ("single", "chinese_whispers"):
        return canonical(components if method == "single" else _chinese_whispers(n, i, j))
    linkage = AUTO_METHOD if method == "auto" else method
    labels = components.copy()  # singletons and pairs are final: a pair is joined by an edge under threshold
    sizes = np.bincount(components)
    offset = int(components.max()) + 1
    for comp in np.flatnonzero(sizes > 2):
        members = np.flatnonzero(components == comp)
        if len(members) > DENSE_MAX:
            if method != "auto":
                raise FacevlmError(
                    f"cluster method {method!r}: {len(members):,} faces are linked under threshold {threshold} "
                    f"(over {DENSE_MAX:,}); use auto or chinese_whispers, or a lower threshold"
                )
            keep = np.isin(i, members)
            local = np.searchsorted(members, np.stack([i[keep], j[keep]]))
            sub = _chinese_whispers(len(members), local[0], local[1])
        else:
            sub = _agglomerative(x[members], threshold, linkage)
        labels[members] = offset + sub
        offset += int(sub.max()) + 1
    return canonical(labels)


def canonical(labels: np.ndarray) -> np.ndarray:
    """`labels` renumbered 0..K-1 by cluster size (largest first), ties by first member; negative labels
    (noise) each become their own cluster."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    noise = labels < 0
    if noise.any():
        labels[noise] = labels.max(initial=-1) + 1 + np.arange(int(noise.sum()))
    _, first, inverse, counts = np.unique(labels, return_index=True, return_inverse=True, return_counts=True)
    order = np.lexsort((first, -counts))  # cluster indices, largest first
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)]


def neighbour_edges(x: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j for every pair of rows closer than `threshold` (Euclidean), by exact FAISS range
    search over blocks of rows: memory follows the number of edges."""
    import faiss

    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    radius = float(threshold) ** 2  # IndexFlatL2 works in squared distances
    rows, cols = [], []
    for start in range(0, len(x), _EDGE_BLOCK):
        lims, _, found = index.range_search(x[start : start + _EDGE_BLOCK], radius)
        src = start + np.repeat(np.arange(len(lims) - 1), np.diff(lims.astype(np.int64)))
        keep = found > src  # each pair once; drops self-matches
        rows.append(src[keep])
        cols.append(found[keep])
    return np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64)


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def _chinese_whispers(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """dlib.chinese_whispers on the unweighted graph (i, j), with a self-loop on every vertex as
    dlib.chinese_whispers_clustering adds (a face without neighbours is still a vertex). dlib seeds its
    random generator the same way on every call, so the result depends only on the input."""
    import dlib

    edges = list(zip(range(n), range(n))) + list(zip(i.tolist(), j.tolist()))
    return np.asarray(dlib.chinese_whispers(edges), np.int64)


def _agglomerative(x: np.ndarray, threshold: float, linkage: str) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters=None, distance_threshold=float(threshold), linkage=linkage)
    return model.fit_predict(x.astype(np.float64)).astype(np.int64)


def _hdbscan(x: np.ndarray) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    return HDBSCAN(min_cluster_size=2, min_samples=1, copy=True).fit_predict(x.astype(np.float64))
