"""FaissBackend index kinds on small data: build, add, remove, search with `allowed`, persistence through
flush and reopen; `auto`'s switches (exact -> IVF past exact_max, new IVF lists once outgrown)."""

from __future__ import annotations

import math

import faiss
import numpy as np
import pytest

from facevlm.errors import FacevlmError
from facevlm.index.backends import BackendConfig
from facevlm.index.backends.faiss_backend import (
    AUTO_PROBE_SHARE,
    MIN_TRAIN,
    FaissBackend,
    build_index,
    choose_kind,
    nlist_for,
)

DIM = 16
KINDS = ["flat", "sq8", "ivf", "ivf_sq8", "hnsw"]


def faces(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors in 40 tight groups (people), so every kind finds a face's own vector first."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIM))
    x = centres[rng.integers(0, 40, n)] + 0.15 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def top1(backend: FaissBackend, queries: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    return backend.search(queries, 5, allowed=allowed)[1][:, 0]


@pytest.mark.parametrize("kind", KINDS)
def test_kind_lifecycle(tmp_path, kind):
    path, cfg = tmp_path / "v.faiss", BackendConfig(index=kind)
    vecs, ids = faces(1500), np.arange(1500, dtype=np.int64) * 7 + 3
    backend = FaissBackend(path, DIM, cfg)
    backend.add(ids, vecs)
    backend.flush()
    assert backend.kind == kind and backend.count() == 1500
    assert np.array_equal(np.sort(backend.ids()), ids)
    probe = np.arange(0, 1500, 50)
    assert np.array_equal(top1(backend, vecs[probe]), ids[probe])  # each face finds itself

    allowed = ids[1::3]  # a metadata filter: only these may come back
    got = backend.search(vecs[probe], 5, allowed=allowed)[1]
    assert np.isin(got[got >= 0], allowed).all()
    exact = allowed[np.argmax(vecs[probe] @ vecs[1::3].T, axis=1)]
    assert (got[:, 0] == exact).mean() >= 0.9  # approximate kinds may miss a few; flat/hnsw at this size do not

    gone = ids[probe[:10]]
    backend.remove(gone)
    assert backend.count() == 1490 and not np.isin(gone, backend.ids()).any()
    assert not np.isin(backend.search(vecs[probe[:10]], 5)[1], gone).any()
    backend.flush()
    before = backend.search(vecs[probe], 5)

    reopened = FaissBackend(path, DIM, cfg)
    assert reopened.kind == kind and reopened.count() == 1490
    assert np.array_equal(np.sort(reopened.ids()), np.sort(backend.ids()))
    after = reopened.search(vecs[probe], 5)
    assert np.array_equal(before[1], after[1]) and np.allclose(before[0], after[0])


@pytest.mark.parametrize("kind", ["sq8", "ivf", "ivf_sq8"])
def test_trained_kind_is_exact_until_it_has_data(tmp_path, kind):
    backend = FaissBackend(tmp_path / "v.faiss", DIM, BackendConfig(index=kind))
    vecs = faces(MIN_TRAIN - 1)
    backend.add(np.arange(len(vecs)), vecs)
    backend.flush()
    assert backend.kind == "flat"
    assert top1(backend, vecs[:5]).tolist() == list(range(5))
    more = faces(10, seed=1)
    backend.add(np.arange(len(vecs), len(vecs) + 10), more)
    backend.flush()
    assert backend.kind == kind and backend.count() == MIN_TRAIN + 9
    assert top1(backend, more[:3]).tolist() == [len(vecs), len(vecs) + 1, len(vecs) + 2]


def test_auto_switches_to_ivf_then_to_more_lists(tmp_path):
    path, cfg = tmp_path / "v.faiss", BackendConfig(index="auto", exact_max=1200)
    vecs = faces(3000)
    backend = FaissBackend(path, DIM, cfg)
    backend.add(np.arange(1100), vecs[:1100])
    backend.flush()
    assert backend.kind == "flat"
    backend.add(np.arange(1100, 1500), vecs[1100:1500])
    backend.flush()
    ivf = faiss.extract_index_ivf(backend.index)
    assert backend.kind == "ivf" and ivf.nlist == nlist_for(1500)
    assert ivf.nprobe == math.ceil(ivf.nlist * AUTO_PROBE_SHARE)
    assert top1(backend, vecs[:1500:100]).tolist() == list(range(0, 1500, 100))  # no vector lost in the switch

    backend.add(np.arange(1500, 3000), vecs[1500:])  # nlist_for(3000) is twice the lists made for 1500
    backend.flush()
    assert faiss.extract_index_ivf(backend.index).nlist == nlist_for(3000) >= 2 * nlist_for(1500)
    assert backend.count() == 3000
    assert top1(backend, vecs[::250]).tolist() == list(range(0, 3000, 250))
    reopened = FaissBackend(path, DIM, cfg)
    assert faiss.extract_index_ivf(reopened.index).nprobe == math.ceil(nlist_for(3000) * AUTO_PROBE_SHARE)


def test_explicit_ivf_uses_the_configured_nprobe(tmp_path):
    backend = FaissBackend(tmp_path / "v.faiss", DIM, BackendConfig(index="ivf", nprobe=3))
    vecs = faces(2000)
    backend.rebuild(np.arange(2000), vecs)
    assert backend.kind == "ivf" and faiss.extract_index_ivf(backend.index).nprobe == 3


def test_choose_kind():
    assert choose_kind(BackendConfig(index="auto", exact_max=10), 10) == "flat"
    assert choose_kind(BackendConfig(index="auto", exact_max=10), MIN_TRAIN) == "ivf"
    assert choose_kind(BackendConfig(index="ivf_sq8"), MIN_TRAIN - 1) == "flat"
    assert choose_kind(BackendConfig(index="hnsw"), 0) == "hnsw"
    with pytest.raises(FacevlmError, match="not one of"):
        choose_kind(BackendConfig(index="pq"), 0)


def test_build_index_errors():
    with pytest.raises(FacevlmError, match="training vectors"):
        build_index("ivf", DIM, BackendConfig())
    with pytest.raises(FacevlmError, match="unknown"):
        build_index("lsh", DIM, BackendConfig())
    with pytest.raises(FacevlmError, match="not trained"):
        build_index("ivf", DIM, BackendConfig(), train=faces(100), quantizer=faiss.IndexFlatIP(DIM))


def test_reused_quantizer_sets_the_lists():
    vecs = faces(2000)
    first = build_index("ivf", DIM, BackendConfig(), train=vecs)
    coarse = faiss.clone_index(faiss.extract_index_ivf(first).quantizer)
    second = build_index("ivf_sq8", DIM, BackendConfig(), train=vecs, quantizer=coarse)
    assert faiss.extract_index_ivf(second).nlist == faiss.extract_index_ivf(first).nlist
    second.add_with_ids(vecs, np.arange(2000))
    assert second.search(vecs[:3], 1)[1][:, 0].tolist() == [0, 1, 2]
