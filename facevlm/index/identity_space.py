"""A gallery's identity space: each face's identity descriptor (facevlm.vision.identity) beside its
FaceCLIP vector, so "the same person" is a distance of the identity expert, not a look-alike ranking.

Kept like the FaceCLIP space: the descriptor is a row of `identity_vectors` in meta.sqlite (the truth,
raw as the model gives it, with the model's name), written in the transaction of its face; a second
backend instance (`identity.faiss`, or the Milvus collection `<collection>_identity`) indexes unit-length
copies for cosine search and is rebuilt from SQLite whenever its ids disagree with the committed rows.
Answers are re-scored with the raw Euclidean distance, the one the model's threshold is stated in.

gallery.json's `identity` entry (model, dim) is written when every face has a descriptor: at creation,
or at the end of `facevlm index reembed` (reembed.py). Its presence means the space is complete, and
ingest keeps it so; a gallery without it (made before identity search, or mid-migration) still answers
FaceCLIP queries and refuses identity ones with a message naming the migration.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from facevlm.errors import FacevlmError
from facevlm.index.backends import BackendConfig, VectorBackend, open_backend


@dataclass(frozen=True)
class IdentitySpec:
    """Which identity model made a gallery's descriptors: what gallery.json records and checks."""

    model: str
    dim: int

    @classmethod
    def of(cls, model: object) -> IdentitySpec:
        return cls(str(model.name), int(model.dim))  # type: ignore[attr-defined]


class Neighbour(NamedTuple):
    face_id: int
    distance: float  # Euclidean, raw descriptors (the model's threshold is stated in it)
    similarity: float  # cosine of the descriptors


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (what the inner-product backends index)."""
    v = np.asarray(vectors, np.float32)
    return (v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def insert_rows(cur: sqlite3.Cursor, model: str, face_ids: list[int], vectors: np.ndarray) -> None:
    """Store descriptors of `model` (inside the caller's transaction); replaces a face's older row."""
    cur.executemany(
        "INSERT OR REPLACE INTO identity_vectors(face_id, model, vector) VALUES (?,?,?)",
        [(int(i), model, np.asarray(v, np.float32).tobytes()) for i, v in zip(face_ids, vectors)],
    )


def missing_ids(db: sqlite3.Connection, model: str) -> list[int]:
    """Faces without a descriptor of `model`, in id order (what a migration still has to do)."""
    sql = "SELECT id FROM faces WHERE id NOT IN (SELECT face_id FROM identity_vectors WHERE model=?) ORDER BY id"
    return [r for (r,) in db.execute(sql, (model,))]


class IdentitySpace:
    """The identity space of one open gallery; shares the gallery's connection and lock."""

    def __init__(
        self, root: Path, db: sqlite3.Connection, lock: threading.RLock, spec: IdentitySpec, cfg: BackendConfig
    ):
        self.root, self.db, self.lock, self.spec = root, db, lock, spec
        self.backend: VectorBackend = open_backend(cfg, root, spec.dim, "identity")

    def check(self, model: object, where: str) -> None:
        """Refuse descriptors of another model than the one this gallery's were made with (409)."""
        name = str(getattr(model, "name", model))
        if name != self.spec.model:
            raise FacevlmError(
                f"{where} holds {self.spec.model} identity vectors, not {name}; use that identity model, or "
                f"`facevlm index reembed {self.root.name} --identity-model {name} --replace`",
                code="identity_model_mismatch",
                status_code=409,
            )

    # -- writes (the gallery owns the transactions) ---------------------------------------------------
    def insert(self, cur: sqlite3.Cursor, face_ids: list[int], vectors: np.ndarray) -> None:
        insert_rows(cur, self.spec.model, face_ids, vectors)

    def index(self, face_ids: list[int], vectors: np.ndarray) -> None:
        """Add committed descriptors to the backend (after their transaction)."""
        if face_ids:
            self.backend.add(np.asarray(face_ids, np.int64), unit(vectors))

    def remove(self, face_ids: list[int]) -> None:
        self.backend.remove(np.asarray(face_ids, np.int64))

    def recover(self) -> bool:
        """Rebuild the backend if its ids differ from the committed descriptors; True if it did."""
        with self.lock:
            committed = np.sort(self.ids())
            if np.array_equal(committed, np.sort(self.backend.ids())):
                return False
            self.rebuild()
            return True

    def rebuild(self) -> None:
        with self.lock:
            ids, vecs = [], []
            for face_id, blob in self.db.execute(
                "SELECT face_id, vector FROM identity_vectors WHERE model=? ORDER BY face_id", (self.spec.model,)
            ):
                ids.append(face_id)
                vecs.append(np.frombuffer(blob, np.float32))
            matrix = np.stack(vecs) if vecs else np.zeros((0, self.spec.dim), np.float32)
            self.backend.rebuild(np.asarray(ids, np.int64), unit(matrix))

    def flush(self) -> None:
        self.backend.flush()

    def close(self, flush: bool) -> None:
        if flush:
            self.backend.flush()
        self.backend.close()

    # -- reads ------------------------------------------------------------------------------------------
    def ids(self) -> np.ndarray:
        with self.lock:
            sql = "SELECT face_id FROM identity_vectors WHERE model=?"
            return np.fromiter((r for (r,) in self.db.execute(sql, (self.spec.model,))), np.int64)

    def count(self) -> int:
        with self.lock:
            sql = "SELECT count(*) FROM identity_vectors WHERE model=?"
            return int(self.db.execute(sql, (self.spec.model,)).fetchone()[0])

    def vectors(self, face_ids: list[int]) -> dict[int, np.ndarray]:
        """Raw descriptors of the given faces that have one."""
        if not face_ids:
            return {}
        out: dict[int, np.ndarray] = {}
        with self.lock:
            for start in range(0, len(face_ids), 900):  # SQLite's bound-parameter limit
                chunk = [int(i) for i in face_ids[start : start + 900]]
                marks = ",".join("?" * len(chunk))
                for fid, blob in self.db.execute(
                    f"SELECT face_id, vector FROM identity_vectors WHERE model=? AND face_id IN ({marks})",
                    [self.spec.model, *chunk],
                ):
                    out[fid] = np.frombuffer(blob, np.float32)
        return out

    def vector(self, face_id: int, gallery: str) -> np.ndarray:
        """The descriptor of one face of the gallery (404 for an unknown face)."""
        found = self.vectors([face_id])
        if face_id not in found:
            known = self.db.execute("SELECT 1 FROM faces WHERE id=?", (int(face_id),)).fetchone() is not None
            if known:
                raise FacevlmError(
                    f"face {face_id} of gallery {gallery!r} has no identity vector (no stored pixels)",
                    code="no_identity_vector",
                    status_code=409,
                )
            raise FacevlmError(f"no face {face_id} in gallery {gallery!r}", code="not_found", status_code=404)
        return found[face_id]

    def labelled_ids(self) -> np.ndarray:
        """Faces with an identity label and a descriptor: the only names recognition may answer with."""
        with self.lock:
            sql = (
                "SELECT f.id FROM faces f JOIN identity_vectors v ON v.face_id=f.id "
                "WHERE f.identity IS NOT NULL AND v.model=?"
            )
            return np.fromiter((r for (r,) in self.db.execute(sql, (self.spec.model,))), np.int64)

    def nearest(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None, exact_below: int = 20_000
    ) -> list[Neighbour]:
        """The k faces nearest to descriptor `query` by raw distance. A small allowed set is scored
        exactly from SQLite; otherwise the index proposes candidates by cosine, re-ranked exactly."""
        query = np.asarray(query, np.float32).reshape(self.spec.dim)
        if allowed is not None and len(allowed) <= exact_below:
            candidates = [int(i) for i in allowed]
        else:
            fetch = min(max(4 * k, 64), max(self.backend.count(), 1))
            with self.lock:
                _, ids = self.backend.search(unit(query)[None], fetch, allowed)
            candidates = [int(i) for i in ids[0] if i >= 0]
        found = self.vectors(candidates)
        if not found:
            return []
        ids = np.fromiter(found, np.int64)
        matrix = np.stack([found[i] for i in ids])
        distance = np.linalg.norm(matrix - query, axis=1)
        cosine = unit(matrix) @ unit(query)
        order = np.argsort(distance, kind="stable")[:k]
        return [Neighbour(int(ids[j]), float(distance[j]), float(cosine[j])) for j in order]
