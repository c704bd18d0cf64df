"""cluster_vectors: exact clusters on separated blobs, the threshold as the same-person cut, edge cases,
determinism; and the pairwise/BCubed scores `facevlm bench cluster` reports."""

from __future__ import annotations

import numpy as np
import pytest

from facevlm.errors import FacevlmError
from facevlm.index import cluster
from facevlm.index.cluster import METHODS, cluster_vectors
from facevlm.index.cluster_bench import bcubed_scores, identity_subsets, pairwise_scores

THRESHOLD_METHODS = [m for m in METHODS if m != "hdbscan"]  # hdbscan is threshold-free (see cluster.py)


def partition(labels: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(labels == k).tolist()) for k in np.unique(labels)}


def blobs(n_blobs: int = 5, per_blob: int = 8, dim: int = 16, spread: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_blobs, dim)) * 3  # ~4+ apart: far beyond any threshold used here
    truth = np.repeat(np.arange(n_blobs), per_blob)
    points = centres[truth] + rng.uniform(-spread, spread, (len(truth), dim)) / np.sqrt(dim)
    order = rng.permutation(len(truth))
    return points[order].astype(np.float32), truth[order]


@pytest.mark.parametrize("method", METHODS)
def test_separated_blobs_are_found_exactly(method):
    x, truth = blobs()
    labels = cluster_vectors(x, threshold=0.6, method=method)
    assert partition(labels) == partition(truth)
    assert labels.dtype == np.int64 and set(labels.tolist()) == set(range(5))


def test_labels_are_numbered_largest_cluster_first():
    x, truth = blobs(n_blobs=3, per_blob=4)
    big = np.concatenate([x, x[truth == 2] + 1e-4])  # blob 2 gets four more faces
    labels = cluster_vectors(big, threshold=0.6)
    assert np.bincount(labels).tolist() == [8, 4, 4]
    assert labels[np.flatnonzero(truth == 2)[0]] == 0
    first = [labels[np.flatnonzero(truth == k)[0]] for k in (0, 1)]  # ties: by first face
    assert first == sorted(first)


@pytest.mark.parametrize("method", THRESHOLD_METHODS)
def test_threshold_is_the_same_person_cut(method):
    pair = np.array([[0.0, 0.0], [0.5, 0.0]], np.float32)
    assert cluster_vectors(pair, threshold=0.6, method=method).tolist() == [0, 0]
    assert sorted(cluster_vectors(pair, threshold=0.4, method=method).tolist()) == [0, 1]
    far = np.array([[0.0, 0.0], [0.5, 0.0], [3.0, 0.0]], np.float32)  # nobody within 0.6 of the third
    labels = cluster_vectors(far, threshold=0.6, method=method)
    assert labels[0] == labels[1] != labels[2]


def test_linkages_differ_on_a_chain():
    """Faces 0.5 apart in a row, cut at 0.6: single linkage and Chinese whispers follow the chain;
    complete linkage keeps every pair of a cluster under the threshold."""
    chain = np.stack([np.arange(8) * 0.5, np.zeros(8)], axis=1).astype(np.float32)
    assert len(set(cluster_vectors(chain, threshold=0.6, method="single").tolist())) == 1
    labels = cluster_vectors(chain, threshold=0.6, method="complete")
    for k in np.unique(labels):
        members = chain[labels == k]
        assert np.linalg.norm(members[:, None] - members[None], axis=2).max() < 0.6
    assert len(set(labels.tolist())) == 4


@pytest.mark.parametrize("method", METHODS)
def test_one_vector_and_empty_input(method):
    assert cluster_vectors(np.ones((1, 128), np.float32), threshold=0.6, method=method).tolist() == [0]
    empty = cluster_vectors(np.zeros((0, 128), np.float32), threshold=0.6, method=method)
    assert empty.shape == (0,) and empty.dtype == np.int64


@pytest.mark.parametrize("method", METHODS)
def test_deterministic(method):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 32)).astype(np.float32) * 0.12  # overlapping crowd: many merge decisions
    first = cluster_vectors(x, threshold=0.6, method=method)
    assert np.array_equal(first, cluster_vectors(x.copy(), threshold=0.6, method=method))


@pytest.mark.parametrize("method", ["average", "complete", "single"])
def test_linkage_does_not_depend_on_row_order(method):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((120, 16)).astype(np.float32) * 0.15
    order = rng.permutation(len(x))
    labels = cluster_vectors(x, threshold=0.6, method=method)
    shuffled = cluster_vectors(x[order], threshold=0.6, method=method)
    assert partition(labels) == {frozenset(order[list(c)].tolist()) for c in partition(shuffled)}


def test_components_match_one_dense_linkage():
    """Linkage per connected component of the threshold graph is the same as linkage over everything."""
    from sklearn.cluster import AgglomerativeClustering

    x, _ = blobs(n_blobs=6, per_blob=10, spread=1.2, seed=5)
    for linkage in ("average", "complete"):
        dense = AgglomerativeClustering(n_clusters=None, distance_threshold=0.6, linkage=linkage).fit_predict(
            x.astype(np.float64)
        )
        assert partition(cluster_vectors(x, threshold=0.6, method=linkage)) == partition(dense)


def test_oversized_component(monkeypatch):
    """A component over DENSE_MAX: auto splits it with Chinese whispers, an explicit linkage refuses."""
    monkeypatch.setattr(cluster, "DENSE_MAX", 5)
    chain = np.stack([np.arange(10) * 0.5, np.zeros(10)], axis=1).astype(np.float32)
    labels = cluster_vectors(np.concatenate([chain, chain[:3] * 0.5 + 100]), threshold=0.6, method="auto")
    assert len(labels) == 13 and len(set(labels[10:].tolist())) == 1 and labels[10] not in labels[:10]
    with pytest.raises(FacevlmError, match="over 5"):
        cluster_vectors(chain, threshold=0.6, method="average")
    with pytest.raises(FacevlmError, match="N x N"):
        cluster_vectors(chain, threshold=0.6, method="hdbscan")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "kmeans"}, "not one of"),
        ({"threshold": 0.0}, "positive"),
        ({"threshold": float("nan")}, "positive"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(FacevlmError, match=message):
        cluster_vectors(np.zeros((3, 4), np.float32), **{"threshold": 0.6, **kwargs})


def test_bad_vectors():
    with pytest.raises(FacevlmError, match=r"\[N, D\]"):
        cluster_vectors(np.zeros(4, np.float32), threshold=0.6)
    with pytest.raises(FacevlmError, match="NaN"):
        cluster_vectors(np.array([[0.0, np.nan], [0.0, 0.0]]), threshold=0.6)


def test_pairwise_and_bcubed_scores():
    truth = np.array(["a", "a", "a", "b", "b", "c"])
    pred = np.array([0, 0, 1, 1, 1, 2])
    # pairs together: {01, 23, 24, 34}; true pairs: {01, 02, 12, 34}; both: {01, 34}
    assert pairwise_scores(pred, truth) == pytest.approx((0.5, 0.5, 0.5))
    # per face precision: 1, 1, 1/3, 2/3, 2/3, 1; recall: 2/3, 2/3, 1/3, 1, 1, 1
    p, r, f = bcubed_scores(pred, truth)
    assert p == pytest.approx((3 + 1 / 3 + 4 / 3) / 6) and r == pytest.approx((4 / 3 + 1 / 3 + 3) / 6)
    assert f == pytest.approx(2 * p * r / (p + r))
    assert pairwise_scores(truth, truth)[2] == bcubed_scores(truth, truth)[2] == 1.0
    singletons = np.arange(6)
    assert pairwise_scores(singletons, truth)[:2] == (1.0, 0.0)
    with pytest.raises(FacevlmError):
        bcubed_scores(pred[:3], truth)


def test_identity_subsets_keep_whole_identities():
    ids = np.array(["a", "a", "b", "c", "c", "c", "d", "e"])
    for subset in identity_subsets(ids, draws=5, share=0.6):
        kept = set(ids[subset].tolist())
        assert len(kept) == 3 and len(subset) == sum(int(i in kept) for i in ids)
