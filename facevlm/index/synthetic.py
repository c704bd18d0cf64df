"""Vectors for the latency and recall benchmarks, where only the vectors matter. Nothing here pretends to
be a face for a face model (test images and tiny models are in tests/fakes.py).

- `unit_vectors`: random unit vectors. Latency depends only on count and dimension, so the latency rows use
  these. They are useless for recall: with no structure every neighbour is about as far as any other, and
  no approximate index can find the top 10 (the old random-vector recall rows measured exactly that).
- `IdentitySpread`: vectors with the structure of real face embeddings, for ANN recall. A two-covariance
  model (the generative model behind PLDA: Ioffe 2006; Prince & Elder 2007) fitted on real embeddings with
  identity labels: a person is a centre `mean + B z` and a photo of them `centre + W e` (z, e standard
  normal), renormalised to unit length as galleries index them. `B Bᵀ` is the covariance of identity centres
  (between-identity spread), `W Wᵀ` the pooled covariance of photos around their identity's mean
  (within-identity spread); both keep the measured anisotropy (the few directions most of the variance
  lies in), which is what makes IVF's cells and HNSW's graph work on real data and fail on random data.
  With few faces per dimension the sample covariances are singular, so both are Ledoit-Wolf shrunk toward
  a scaled identity, and the between estimate has the within noise of an identity mean (W Wᵀ / n_k)
  taken out. Real identities are not equally spread (video frames of one person are near copies, photos
  years apart are not), so each drawn person's photo noise is scaled by a factor resampled from the
  measured per-identity spreads (`scales`, mean square 1). `compare` draws a set shaped like the fitting
  data and reports what it reproduces (genuine and impostor distance quantiles, nearest-neighbour rank-1).

  Known limits: a Gaussian has no heavy tails or sub-clusters (pose, age, lighting modes), and the identity
  spread is fitted on 167 real faces (only 6 people with 2+ faces), so the drawn photos of one person are
  somewhat more alike than real ones (see the `compare` rows); the FaceCLIP spread comes from renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facevlm.errors import FacevlmError
from facevlm.index.store import FaceEntry, Gallery


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):  # bounded temporaries at 1M x 256
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def fill_random(gallery: Gallery, n: int, seed: int = 0, batch: int = 1000) -> None:
    """Add `n` vector-only faces (no pixels) in batches of one transaction each; for latency benchmarks."""
    vecs = unit_vectors(n, gallery.dim, seed)
    for start in range(0, n, batch):
        gallery.add_faces([FaceEntry(v, source="random") for v in vecs[start : start + batch]])
    gallery.flush()


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _root(cov: np.ndarray) -> np.ndarray:
    """A factor F with F Fᵀ = cov, negative eigenvalues (estimation noise) clipped to 0."""
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    return vectors * np.sqrt(np.clip(values, 0, None))


@dataclass(frozen=True)
class IdentitySpread:
    """The fitted two-covariance model of one embedding space (see the module docstring). `source` says
    what it was measured on; `between` and `within` are the factors B and W; `scales` the measured
    per-identity spread factors."""

    mean: np.ndarray
    between: np.ndarray
    within: np.ndarray
    scales: np.ndarray
    source: str

    @property
    def dim(self) -> int:
        return len(self.mean)

    @classmethod
    def fit(cls, vectors: np.ndarray, identities: np.ndarray, source: str) -> IdentitySpread:
        """Fit on labelled embeddings (made unit length first); identities with one face inform only the
        between spread."""
        from sklearn.covariance import ledoit_wolf

        x = _unit(np.asarray(vectors, np.float64)).astype(np.float64)
        names, index, counts = np.unique(np.asarray(identities), return_inverse=True, return_counts=True)
        if len(names) < 2 or (counts > 1).sum() < 1:
            raise FacevlmError(f"{source}: need 2+ identities and one with 2+ faces to measure the spread")
        means = np.zeros((len(names), x.shape[1]))
        np.add.at(means, index, x)
        means /= counts[:, None]
        multi = counts[index] > 1
        deviations = (x - means[index])[multi]
        dof = int(multi.sum() - (counts > 1).sum())  # each identity mean uses up one face's freedom
        within = ledoit_wolf(deviations, assume_centered=True)[0] * (len(deviations) / dof)
        centre = means.mean(0)
        spread_of_means = ledoit_wolf(means - centre, assume_centered=True)[0]
        between = spread_of_means - np.mean(1.0 / counts) * within
        square = np.zeros(len(names))
        np.add.at(square, index[multi], (deviations**2).sum(1))
        own = square[counts > 1] / (counts[counts > 1] - 1)  # unbiased per-identity mean square deviation
        scales = np.sqrt(own / own.mean())
        f32 = np.float32
        factors = _root(between).astype(f32), _root(within).astype(f32)
        return cls(centre.astype(f32), *factors, scales.astype(f32), source)

    def save(self, path: str | Path) -> None:
        np.savez(path, mean=self.mean, between=self.between, within=self.within, scales=self.scales, source=self.source)

    @classmethod
    def load(cls, path: str | Path) -> IdentitySpread:
        with np.load(path) as f:
            return cls(f["mean"], f["between"], f["within"], f["scales"], str(f["source"]))

    def centres(self, n_identities: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(identity centres [n, D], their photo-noise scales [n])."""
        rng = np.random.default_rng(seed)
        centres = self.mean + rng.standard_normal((n_identities, self.dim), dtype=np.float32) @ self.between.T
        return centres.astype(np.float32), rng.choice(self.scales, n_identities).astype(np.float32)

    def faces(
        self, people: tuple[np.ndarray, np.ndarray], identity: np.ndarray, seed: int = 1, block: int = 100_000
    ) -> np.ndarray:
        """Unit-length faces of the given identities (rows of `people`, from `centres`), one per entry of
        `identity`."""
        centres, scales = people
        rng = np.random.default_rng(seed)
        out = np.empty((len(identity), self.dim), np.float32)
        for start in range(0, len(identity), block):  # bounded temporaries at 1M x 256
            ids = identity[start : start + block]
            noise = rng.standard_normal((len(ids), self.dim), dtype=np.float32) @ self.within.T
            out[start : start + len(ids)] = _unit(centres[ids] + scales[ids, None] * noise)
        return out

    def gallery(
        self, n: int, per_identity: float, queries: int, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(base [n, D], base identities, queries [queries, D], query identities): `n` faces of
        n / per_identity people (each face's person uniform at random) and new photos of random people
        in it as queries: "more photos of this person"."""
        n_ids = max(1, round(n / per_identity))
        people = self.centres(n_ids, seed)
        rng = np.random.default_rng(seed + 1)
        base_ids = rng.integers(0, n_ids, n)
        query_ids = base_ids[rng.choice(n, queries, replace=False)] if queries else np.zeros(0, np.int64)
        return (
            self.faces(people, base_ids, seed + 2),
            base_ids,
            self.faces(people, query_ids, seed + 3),
            query_ids,
        )

    def draw_like(self, identities: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """A draw with the same identity sizes as `identities` (for `compare`)."""
        _, index = np.unique(np.asarray(identities), return_inverse=True)
        return self.faces(self.centres(index.max() + 1, seed), index, seed + 1), index


def distance_summary(vectors: np.ndarray, identities: np.ndarray) -> dict[str, float]:
    """Euclidean distances between unit vectors: genuine (same identity) and impostor quantiles, and the
    share of faces whose nearest other face is of their identity (rank-1)."""
    x = _unit(np.asarray(vectors, np.float32))
    ids = np.asarray(identities)
    sim = x @ x.T
    dist = np.sqrt(np.clip(2 - 2 * sim, 0, None))
    same = ids[:, None] == ids[None, :]
    upper = np.triu(np.ones_like(same), 1)
    genuine, impostor = dist[same & upper], dist[~same & upper]
    np.fill_diagonal(sim, -np.inf)
    has_mate = same.sum(1) > 1
    rank1 = float(np.mean(ids[sim.argmax(1)][has_mate] == ids[has_mate])) if has_mate.any() else float("nan")
    g5, g50, g95 = np.percentile(genuine, [5, 50, 95]) if len(genuine) else (np.nan,) * 3
    i1, i5, i50 = np.percentile(impostor, [1, 5, 50])
    return {"gen_p5": g5, "gen_p50": g50, "gen_p95": g95, "imp_p1": i1, "imp_p5": i5, "imp_p50": i50, "rank1": rank1}


def compare(spread: IdentitySpread, vectors: np.ndarray, identities: np.ndarray, seed: int = 0) -> tuple[dict, dict]:
    """(summary of the real vectors, summary of a draw shaped like them): what the generator reproduces."""
    drawn, drawn_ids = spread.draw_like(identities, seed)
    return distance_summary(vectors, identities), distance_summary(drawn, drawn_ids)
