"""A gallery: one directory holding SQLite metadata, the image store and a vector backend.

    <gallery>/gallery.json   model name, embedding dim, backend config (fixed at creation); identity model
                             and dim once every face has an identity vector                [identity_space.py]
    <gallery>/gallery.lock   pid of the one writer process                                  [lifecycle.py]
    <gallery>/meta.sqlite    images, faces (+ each face's embedding as a blob), attributes, identity
                             vectors, cluster runs                                          [metadb.py]
    <gallery>/images|crops|thumbs/…                                                         [files.py]
    <gallery>/vectors.faiss + identity.faiss, or milvus.db                                  [backends/]

Each image is one SQLite transaction (the image row, its faces' rows and vector ids). Files are written before
the commit, the vector is added after it, deletes commit first and clean up after; so after a crash at any point,
start-up only has to delete orphan files and rebuild the vector index if its ids differ from SQLite's.
This module is that orchestration (the `Gallery` class, and `delete_gallery`); what the rows hold is
metadb.py, the lock file and tombstones of whole-gallery deletion are lifecycle.py.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from facevlm.errors import FacevlmError
from facevlm.index import files, metadb
from facevlm.index.backends import BackendConfig, VectorBackend, exact_search, open_backend
from facevlm.index.entries import FaceEntry, FaceRow, ImageBlob
from facevlm.index.identity_space import IdentitySpace, IdentitySpec
from facevlm.index.lifecycle import entomb, take_lock

__all__ = ["FaceEntry", "FaceRow", "Gallery", "IdentitySpec", "ImageBlob", "delete_gallery"]


class Gallery:
    """Open with `Gallery.open(...)`; thread-safe (one lock); one writer process per gallery."""

    def __init__(
        self,
        root: Path,
        model: str,
        dim: int,
        backend_cfg: BackendConfig,
        read_only: bool,
        fsync: bool = True,
        identity: IdentitySpec | None = None,
    ):
        self.root, self.model, self.dim, self.read_only, self.fsync = root, model, dim, read_only, fsync
        self.backend_cfg = backend_cfg
        self.lock = threading.RLock()
        self._lockfile = None if read_only else take_lock(root)
        self.db = metadb.connect(root, read_only)
        self.backend: VectorBackend = open_backend(backend_cfg, root, dim)
        self.identity: IdentitySpace | None = None
        if identity is not None:
            self.identity = IdentitySpace(root, self.db, self.lock, identity, backend_cfg)
        self.recovered = self._recover()

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        model: str | None = None,
        backend: BackendConfig | None = None,
        read_only: bool = False,
        create: bool = True,
        dim: int | None = None,
        fsync: bool = True,
        identity: IdentitySpec | None = None,
    ) -> Gallery:
        """Open (or create, given `model` and `dim`) the gallery in directory `path` (always a path: names
        are resolved by facevlm.index.names). Its model and backend are fixed at creation (`backend`
        applies to a new gallery only): vectors from another model would be meaningless neighbours, and
        a silently switched backend would rebuild the index on every open. `identity` is the identity
        model of the caller: a new gallery records it; one whose identity vectors come from another
        model is refused (409); one without identity vectors opens (FaceCLIP only, until migrated)."""
        root = Path(path).expanduser()
        info_path = root / "gallery.json"
        if info_path.is_file():
            info = json.loads(info_path.read_text())
            if model is not None and model != info["model"]:
                raise FacevlmError(
                    f"gallery {root} holds {info['model']} embeddings, not {model}",
                    code="gallery_model_mismatch",
                    status_code=409,
                )
            recorded = IdentitySpec(**info["identity"]) if info.get("identity") else None
            if identity is not None and recorded is not None and identity.model != recorded.model:
                raise FacevlmError(
                    f"gallery {root} holds {recorded.model} identity vectors, not {identity.model}; use that "
                    f"identity model, or `facevlm index reembed {root} --identity-model {identity.model} --replace`",
                    code="identity_model_mismatch",
                    status_code=409,
                )
            backend_cfg = BackendConfig(**info["backend"])
            return cls(root, info["model"], int(info["dim"]), backend_cfg, read_only, fsync, recorded)
        if not create or read_only:
            raise FacevlmError(f"gallery {root} does not exist", code="gallery_not_found", status_code=404)
        if model is None or dim is None:
            raise FacevlmError(f"gallery {root} does not exist; creating it needs a model")
        root.mkdir(parents=True, exist_ok=True)
        cfg = backend or BackendConfig()
        info = {"model": model, "dim": dim, "backend": asdict(cfg), "created": time.time(), "version": 1}
        if identity is not None:
            info["identity"] = asdict(identity)
        files.write_durable(info_path, json.dumps(info, indent=2).encode())
        return cls(root, model, dim, cfg, read_only, fsync, identity)

    def set_identity_space(self, spec: IdentitySpec | None) -> None:
        """Record (or with None, forget) the identity model of this gallery's vectors in gallery.json and
        open (close) its identity space. facevlm.index.reembed calls this once every face has a vector
        (or before replacing them), so gallery.json never claims vectors the gallery does not hold."""
        self._writable()
        with self.lock:
            info_path = self.root / "gallery.json"
            info = json.loads(info_path.read_text())
            info.pop("identity", None)
            if spec is not None:
                info["identity"] = asdict(spec)
            files.write_durable(info_path, json.dumps(info, indent=2).encode())
            if self.identity is not None:
                self.identity.close(flush=False)
                self.identity = None
            if spec is not None:
                self.identity = IdentitySpace(self.root, self.db, self.lock, spec, self.backend_cfg)
                self.identity.rebuild()

    # -- start-up recovery -------------------------------------------------------------------------
    def _recover(self) -> dict[str, int]:
        """Delete orphan files; rebuild the vector index if it disagrees with SQLite."""
        report = {"orphan_files": 0, "rebuilt": 0}
        if self.read_only:
            return report
        with self.lock:
            referenced = {r for row in self.db.execute("SELECT crop, thumb FROM faces") for r in row if r}
            referenced |= {r for (r,) in self.db.execute("SELECT path FROM images") if r}
            orphans = files.stored_files(self.root) - referenced
            files.remove_files(self.root, sorted(orphans))
            report["orphan_files"] = len(orphans)
            committed = np.fromiter((r for (r,) in self.db.execute("SELECT id FROM faces ORDER BY id")), np.int64)
            indexed = np.sort(self.backend.ids())
            if len(committed) != len(indexed) or not np.array_equal(committed, indexed):
                self.rebuild_index()
                report["rebuilt"] = 1
            if self.identity is not None and self.identity.recover():
                report["rebuilt"] += 1
        return report

    def rebuild_index(self) -> None:
        """Rebuild the vector backend from the embeddings held in SQLite (the source of truth)."""
        with self.lock:
            ids, vecs = [], []
            for face_id, blob in self.db.execute("SELECT id, embedding FROM faces ORDER BY id"):
                ids.append(face_id)
                vecs.append(np.frombuffer(blob, np.float32))
            matrix = np.stack(vecs) if vecs else np.zeros((0, self.dim), np.float32)
            self.backend.rebuild(np.asarray(ids, np.int64), matrix)

    # -- writes ------------------------------------------------------------------------------------
    def add_face(self, entry: FaceEntry, image: ImageBlob | None = None) -> int:
        return self.add_faces([entry], image)[0]

    def add_faces(self, entries: list[FaceEntry], image: ImageBlob | None = None) -> list[int]:
        """Store the faces of one image durably and return their ids: files first, then ONE transaction
        for the image and all its faces (so a re-run can skip any image already present), then vectors.
        Identity vectors are kept only in a gallery with an identity space (of faces that have one)."""
        self._writable()
        if not entries:
            return []
        vecs = (
            np.stack([np.asarray(e.embedding, np.float32).reshape(-1) for e in entries])
            if entries
            else np.zeros((0, self.dim), np.float32)
        )
        if vecs.shape[1] != self.dim:
            raise FacevlmError(f"embedding has {vecs.shape[1]} dims, gallery {self.root.name} expects {self.dim}")
        written: list[str] = []
        stored = []
        for entry in entries:
            pair = files.save_face_files(self.root, entry.crop, self.fsync) if entry.crop is not None else (None, None)
            written += [p for p in pair if p]
            stored.append(pair)
        image_path = None
        if image is not None and image.data is not None:
            image_path = files.save_original(self.root, image.sha256, image.data, image.ext, self.fsync)
        with self.lock:
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                image_id = None
                if image is not None:
                    image_id = metadb.insert_image(cur, image, image_path)
                ids = [
                    metadb.insert_face(cur, image_id, entry, vec, crop, thumb)
                    for entry, vec, (crop, thumb) in zip(entries, vecs, stored)
                ]
                known = [(i, e.identity_vector) for i, e in zip(ids, entries) if e.identity_vector is not None]
                if self.identity is not None and known:
                    identity_vecs = np.stack([np.asarray(v, np.float32).reshape(-1) for _, v in known])
                    if identity_vecs.shape[1] != self.identity.spec.dim:
                        raise FacevlmError(
                            f"identity vector has {identity_vecs.shape[1]} dims, gallery {self.root.name} "
                            f"expects {self.identity.spec.dim}"
                        )
                    self.identity.insert(cur, [i for i, _ in known], identity_vecs)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                files.remove_files(self.root, written)
                raise
            self.backend.add(np.asarray(ids, np.int64), vecs)
            if self.identity is not None and known:
                self.identity.index([i for i, _ in known], identity_vecs)
        return ids

    def has_image(self, sha256: str) -> bool:
        with self.lock:
            return self.db.execute("SELECT 1 FROM images WHERE sha256=?", (sha256,)).fetchone() is not None

    def remove_faces(self, face_ids: list[int]) -> int:
        """Erase faces: rows (commit first), then vectors, crops, thumbnails, and originals that no
        remaining face uses. Returns how many faces existed."""
        self._writable()
        with self.lock:
            marks = ",".join("?" * len(face_ids)) or "NULL"
            rows = self.db.execute(
                f"SELECT id, image_id, crop, thumb FROM faces WHERE id IN ({marks})", [int(i) for i in face_ids]
            ).fetchall()
            if not rows:
                return 0
            found = [r[0] for r in rows]
            image_ids = sorted({r[1] for r in rows if r[1] is not None})
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                orphans = metadb.delete_faces(cur, found, image_ids)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self.backend.remove(np.asarray(found, np.int64))
            if self.identity is not None:
                self.identity.remove(found)
            files.remove_files(self.root, [p for r in rows for p in (r[2], r[3]) if p] + [p for _, p in orphans if p])
            return len(found)

    def remove_image(self, image_id: int) -> int:
        """Erase every face of one source image (and the image)."""
        ids = [r for (r,) in self.db.execute("SELECT id FROM faces WHERE image_id=?", (int(image_id),))]
        return self.remove_faces(ids)

    def flush(self) -> None:
        with self.lock:
            self.backend.flush()
            if self.identity is not None:
                self.identity.flush()

    def close(self) -> None:
        """Flush and close; closing a closed gallery does nothing."""
        with self.lock:
            if self.db is None:
                return
            if not self.read_only:
                self.backend.flush()
            self.backend.close()
            if self.identity is not None:
                self.identity.close(flush=not self.read_only)
            self.db.close()
            self.db = None  # type: ignore[assignment]
            if self._lockfile is not None:
                self._lockfile.close()
                self._lockfile = None

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _writable(self) -> None:
        if self.read_only:
            raise FacevlmError(f"gallery {self.root} is open read-only")

    # -- reads -------------------------------------------------------------------------------------
    def count(self) -> int:
        with self.lock:
            return int(self.db.execute("SELECT count(*) FROM faces").fetchone()[0])

    def faces(self, face_ids: list[int]) -> dict[int, FaceRow]:
        """Rows of the given ids that exist (unknown ids are simply absent)."""
        if not face_ids:
            return {}
        with self.lock:
            rows, attrs = metadb.select_faces(self.db, face_ids)
        return metadb.face_rows(rows, attrs)

    def list_ids(self, after: int = 0, limit: int = 100, image_id: int | None = None) -> list[int]:
        sql, args = "SELECT id FROM faces WHERE id > ?", [int(after)]
        if image_id is not None:
            sql, args = sql + " AND image_id = ?", args + [int(image_id)]
        with self.lock:
            return [r for (r,) in self.db.execute(sql + " ORDER BY id LIMIT ?", args + [int(limit)])]

    def embeddings(self, face_ids: list[int]) -> dict[int, np.ndarray]:
        if not face_ids:
            return {}
        with self.lock:
            marks = ",".join("?" * len(face_ids))
            return {
                fid: np.frombuffer(blob, np.float32)
                for fid, blob in self.db.execute(
                    f"SELECT id, embedding FROM faces WHERE id IN ({marks})", [int(i) for i in face_ids]
                )
            }

    def filter_ids(self, values: dict[str, list[str]], min_prob: float = 0.0) -> np.ndarray:
        """Ids of faces matching every filter: attribute name -> accepted values (any origin, prob >=
        min_prob), or "identity" -> accepted identities."""
        sql, args = ["SELECT id FROM faces WHERE 1"], []
        for name, accepted in values.items():
            marks = ",".join("?" * len(accepted))
            if name == "identity":
                sql.append(f"AND identity IN ({marks})")
                args += list(accepted)
            else:
                sql.append(
                    f"AND id IN (SELECT face_id FROM attributes WHERE name=? AND value IN ({marks}) AND prob >= ?)"
                )
                args += [name, *accepted, float(min_prob)]
        with self.lock:
            return np.fromiter((r for (r,) in self.db.execute(" ".join(sql), args)), np.int64)

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None, exact_below: int = 20_000
    ) -> list[list[tuple[int, float]]]:
        """Top-k (face id, score) per query. A small filtered set is scored exactly from SQLite so an
        approximate index cannot miss matches that the filter already narrowed down."""
        queries = np.asarray(queries, np.float32).reshape(-1, self.dim)
        if allowed is not None and len(allowed) <= exact_below:
            emb = self.embeddings(allowed.tolist())
            ids = np.fromiter(emb, np.int64)
            matrix = np.stack([emb[i] for i in ids]) if emb else np.zeros((0, self.dim), np.float32)
            return exact_search(queries, ids, matrix, k)
        with self.lock:
            scores, ids = self.backend.search(queries, k, allowed)
        return [[(int(i), float(s)) for i, s in zip(ids[q], scores[q]) if i >= 0] for q in range(len(queries))]

    def stats(self, sensitive: bool = False) -> dict[str, Any]:
        """Counts for the owner's overview. Sensitive attributes (apparent age, gender presentation,
        skin tone, race) are counted only with `sensitive`, the switch that also gates filtering and
        answering on them: a per-group tally of a gallery is itself sensitive information."""
        with self.lock:
            n_images = self.db.execute("SELECT count(*) FROM images").fetchone()[0]
            by_attr = self.db.execute(
                "SELECT name, value, count(*) FROM attributes GROUP BY name, value ORDER BY name, value"
            ).fetchall()
            return {
                "gallery": str(self.root),
                "model": self.model,
                "dim": self.dim,
                "backend": self.backend_cfg.kind,
                "index": getattr(self.backend, "kind", self.backend_cfg.index),
                "faces": self.count(),
                "vectors": self.backend.count(),
                "images": n_images,
                "identities": self.db.execute("SELECT count(DISTINCT identity) FROM faces").fetchone()[0],
                "identity_model": None if self.identity is None else self.identity.spec.model,
                "identity_vectors": 0 if self.identity is None else self.identity.count(),
                "attributes": metadb.attribute_summary(by_attr, sensitive),
                "disk_bytes": sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file()),
            }


def delete_gallery(root: Path) -> int:
    """Erase a whole gallery: vectors, metadata, originals, crops, thumbnails, its directory. The caller
    closes it first; a gallery open for writing in another process is refused (409). Vectors are cleared
    through the backend, since a Milvus server keeps them outside the directory. The directory is then
    renamed to a hidden tombstone and removed, so a crash midway never leaves a half-erased gallery that
    still opens: a tombstone is not a gallery, and `sweep_deleted` removes what is left of it. Returns
    how many faces it held."""
    root = Path(root)
    gallery = Gallery.open(root, create=False)
    try:
        faces = gallery.count()
        gallery.backend.rebuild(np.zeros(0, np.int64), np.zeros((0, gallery.dim), np.float32))
        if gallery.identity is not None:
            dim = gallery.identity.spec.dim
            gallery.identity.backend.rebuild(np.zeros(0, np.int64), np.zeros((0, dim), np.float32))
    finally:
        gallery.close()
    entomb(root)
    return faces
