"""Milvus backend through pymilvus: the same client code talks to Milvus Lite (a local `.db` file,
used in tests and small deployments) and to a Milvus server or cluster (`uri: http://host:19530`).

Only ids and vectors live in Milvus; metadata stays in the gallery's SQLite so filters, erasure and
crash recovery work identically for both backends.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

import numpy as np

from facevlm.errors import FacevlmError
from facevlm.index.backends import BackendConfig, as_ids, as_matrix

# Milvus Lite has no server timestamp to hand the query iterator; pymilvus warns on every call.
logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)

BATCH = 2000  # rows per insert/delete call: keeps gRPC messages well under Milvus' 64 MB limit
# Backends open per Milvus Lite file in this process: a gallery's two vector spaces are two collections of
# one file, served by one in-process server that may only stop when the last of them closes.
_LITE_USERS: Counter[str] = Counter()
_LITE_LOCK = threading.Lock()


def _is_lite(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


class MilvusBackend:
    def __init__(self, uri: str, dim: int, cfg: BackendConfig | None = None):
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise FacevlmError("backend.kind milvus needs `pip install pymilvus milvus-lite`") from exc
        self.cfg = cfg or BackendConfig(kind="milvus")
        self.dim = dim
        self.uri = uri
        try:
            self.client = MilvusClient(uri, token=self.cfg.token) if self.cfg.token else MilvusClient(uri)
        except Exception as exc:  # pymilvus raises its own MilvusException hierarchy
            raise FacevlmError(f"backend.uri {uri}: cannot connect to Milvus ({exc})") from None
        if _is_lite(uri):
            with _LITE_LOCK:
                _LITE_USERS[uri] += 1
        self.name = self.cfg.collection
        if self.client.has_collection(self.name):
            self._check_dim()
            self.client.load_collection(self.name)  # a reopened collection starts released
        else:
            self._create()

    def _create(self) -> None:
        self.client.create_collection(
            self.name,
            dimension=self.dim,
            primary_field_name="id",
            id_type="int",
            vector_field_name="vector",
            metric_type="IP",
            auto_id=False,
            consistency_level="Strong",
        )

    def _check_dim(self) -> None:
        fields = self.client.describe_collection(self.name)["fields"]
        dims = [f["params"].get("dim") for f in fields if f["name"] == "vector"]
        if dims and int(dims[0]) != self.dim:
            raise FacevlmError(
                f"Milvus collection {self.name!r} at {self.uri} holds {dims[0]}-d vectors, "
                f"the gallery's model gives {self.dim}-d"
            )

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = as_ids(ids), as_matrix(vectors, self.dim)
        for start in range(0, len(ids), BATCH):
            rows = [
                {"id": int(i), "vector": v.tolist()}
                for i, v in zip(ids[start : start + BATCH], vectors[start : start + BATCH])
            ]
            self.client.upsert(self.name, rows)  # upsert: re-adding after a crash is idempotent

    def remove(self, ids: np.ndarray) -> None:
        ids = as_ids(ids)
        for start in range(0, len(ids), BATCH):
            self.client.delete(self.name, ids=[int(i) for i in ids[start : start + BATCH]])

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = as_matrix(queries, self.dim)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        out = np.full((len(queries), k), -1, np.int64)
        if allowed is not None and len(allowed) == 0:
            return scores, out
        expr = "" if allowed is None else f"id in [{','.join(str(int(i)) for i in as_ids(allowed))}]"
        hits = self.client.search(
            self.name,
            data=[q.tolist() for q in queries],
            limit=k,
            filter=expr,
            output_fields=["id"],
            search_params={"metric_type": "IP"},
        )
        for row, found in enumerate(hits):
            for col, hit in enumerate(found[:k]):
                out[row, col] = int(hit["id"])
                scores[row, col] = float(hit["distance"])
        return scores, out

    def count(self) -> int:
        res = self.client.query(self.name, filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def ids(self) -> np.ndarray:
        it = self.client.query_iterator(self.name, batch_size=BATCH, filter="", output_fields=["id"])
        found: list[int] = []
        try:
            while batch := it.next():
                found.extend(int(r["id"]) for r in batch)
        finally:
            it.close()
        return np.asarray(found, np.int64)

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.client.drop_collection(self.name)
        self._create()
        self.add(ids, vectors)
        self.flush()

    def flush(self) -> None:
        self.client.flush(self.name)

    def close(self) -> None:
        """Close the client; for a Milvus Lite file, once its last backend in this process closes, also
        stop its in-process server so the file's lock is released (another process, e.g. the CLI after
        the gateway, can open the gallery)."""
        self.client.close()
        if not _is_lite(self.uri):
            return
        with _LITE_LOCK:
            _LITE_USERS[self.uri] -= 1
            if _LITE_USERS[self.uri] > 0:
                return
            del _LITE_USERS[self.uri]
        try:
            from milvus_lite.server_manager import server_manager_instance
        except ImportError:  # older milvus-lite: its server lives until the process exits
            return
        server_manager_instance.release_server(self.uri)
