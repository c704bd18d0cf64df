"""Group a gallery's unlabelled faces by person, and name the groups ("these are all Grandma").

A run clusters the identity descriptors of every face without an `identity` label
(`facevlm.index.cluster.cluster_vectors`, at the identity model's same-person threshold unless told
otherwise) and is stored in meta.sqlite: one `cluster_runs` row, one `clusters` row per group, one
`cluster_members` row per face. Cluster ids are AUTOINCREMENT rows, never reused, so a cluster a user
saw stays addressable by its id after later runs; erasing a face removes it from its clusters (ON
DELETE CASCADE) and a cluster is listed with the faces it still has. Naming a cluster sets `identity`
on all of its faces in one transaction (and records the name on the cluster), after which those faces
are labelled: recognition may answer with that name, and the next run leaves them out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from facevlm.errors import FacevlmError
from facevlm.index.recognize import identity_space
from facevlm.index.store import Gallery

REPRESENTATIVES = 3  # faces shown per cluster: those nearest its mean descriptor


@dataclass
class Cluster:
    id: int
    run_id: int
    identity: str | None
    face_ids: list[int]
    representatives: list[int] = field(default_factory=list)


@dataclass
class ClusterRun:
    id: int
    created: float
    model: str
    method: str
    threshold: float
    faces: int  # faces clustered in the run (some may have been erased since)
    clusters: list[Cluster]


def cluster_gallery(
    gallery: Gallery, name: str, *, threshold: float, method: str = "auto", max_faces: int | None = None
) -> ClusterRun:
    """Cluster the unlabelled faces of `gallery` (named `name` in messages) and store the run.
    `max_faces` bounds the work one call may do (the gateway's; the CLI has none)."""
    from facevlm.index.cluster import cluster_vectors

    space = identity_space(gallery, name)
    with gallery.lock:
        rows = gallery.db.execute(
            "SELECT v.face_id, v.vector FROM identity_vectors v JOIN faces f ON f.id=v.face_id "
            "WHERE f.identity IS NULL AND v.model=? ORDER BY v.face_id",
            (space.spec.model,),
        ).fetchall()
    if max_faces is not None and len(rows) > max_faces:
        raise FacevlmError(
            f"gallery {name!r} has {len(rows)} unlabelled faces, over the {max_faces} this server clusters in "
            f"one request (identity.max_cluster_faces); run `facevlm index cluster {name}` on the server",
            code="too_many_faces",
        )
    ids = [r[0] for r in rows]
    vectors = np.stack([np.frombuffer(r[1], np.float32) for r in rows]) if rows else np.zeros((0, space.spec.dim))
    labels = cluster_vectors(vectors, threshold=threshold, method=method)
    gallery._writable()
    with gallery.lock:
        cur = gallery.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute(
                "INSERT INTO cluster_runs(created, model, method, threshold, faces) VALUES (?,?,?,?,?)",
                (time.time(), space.spec.model, method, float(threshold), len(ids)),
            )
            run_id = int(cur.lastrowid)
            for label in range(int(labels.max()) + 1 if len(labels) else 0):  # labels: 0..K-1, largest first
                cur.execute("INSERT INTO clusters(run_id) VALUES (?)", (run_id,))
                cluster_id = int(cur.lastrowid)
                members = [(cluster_id, ids[i]) for i in np.flatnonzero(labels == label)]
                cur.executemany("INSERT INTO cluster_members(cluster_id, face_id) VALUES (?,?)", members)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    return load_run(gallery, name, run_id)


def latest_run(gallery: Gallery, name: str) -> ClusterRun | None:
    """The most recent run of the gallery (None before the first one)."""
    identity_space(gallery, name)
    with gallery.lock:
        row = gallery.db.execute("SELECT max(id) FROM cluster_runs").fetchone()
    return None if row[0] is None else load_run(gallery, name, int(row[0]))


def load_run(gallery: Gallery, name: str, run_id: int) -> ClusterRun:
    with gallery.lock:
        run = gallery.db.execute(
            "SELECT id, created, model, method, threshold, faces FROM cluster_runs WHERE id=?", (int(run_id),)
        ).fetchone()
        if run is None:
            raise FacevlmError(f"no cluster run {run_id} in gallery {name!r}", code="not_found", status_code=404)
        ids = [r for (r,) in gallery.db.execute("SELECT id FROM clusters WHERE run_id=? ORDER BY id", (run[0],))]
    clusters = [c for c in (_cluster(gallery, i) for i in ids) if c.face_ids]  # erased faces leave empty ones
    return ClusterRun(run[0], run[1], run[2], run[3], run[4], run[5], clusters)


def get_cluster(gallery: Gallery, name: str, cluster_id: int) -> Cluster:
    identity_space(gallery, name)
    cluster = _cluster(gallery, cluster_id)
    if cluster.run_id < 0:
        raise FacevlmError(f"no cluster {cluster_id} in gallery {name!r}", code="not_found", status_code=404)
    return cluster


def name_cluster(gallery: Gallery, name: str, cluster_id: int, identity: str) -> Cluster:
    """Set `identity` on every face of the cluster (and record it on the cluster)."""
    identity = identity.strip()
    if not identity:
        raise FacevlmError("identity: empty name", code="invalid_request")
    gallery._writable()
    cluster = get_cluster(gallery, name, cluster_id)
    if not cluster.face_ids:
        raise FacevlmError(
            f"cluster {cluster_id} of gallery {name!r} has no faces left (all erased)",
            code="not_found",
            status_code=404,
        )
    with gallery.lock:
        cur = gallery.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute(
                "UPDATE faces SET identity=? WHERE id IN (SELECT face_id FROM cluster_members WHERE cluster_id=?)",
                (identity, int(cluster_id)),
            )
            cur.execute("UPDATE clusters SET identity=? WHERE id=?", (identity, int(cluster_id)))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    return get_cluster(gallery, name, cluster_id)


def _cluster(gallery: Gallery, cluster_id: int) -> Cluster:
    """The cluster with its current faces (run_id -1: no such cluster)."""
    with gallery.lock:
        row = gallery.db.execute("SELECT run_id, identity FROM clusters WHERE id=?", (int(cluster_id),)).fetchone()
        if row is None:
            return Cluster(int(cluster_id), -1, None, [])
        members = [
            r
            for (r,) in gallery.db.execute(
                "SELECT face_id FROM cluster_members WHERE cluster_id=? ORDER BY face_id", (int(cluster_id),)
            )
        ]
    return Cluster(int(cluster_id), int(row[0]), row[1], members, _representatives(gallery, members))


def _representatives(gallery: Gallery, face_ids: list[int]) -> list[int]:
    """Up to REPRESENTATIVES faces nearest the cluster's mean descriptor: its most typical faces."""
    if len(face_ids) <= REPRESENTATIVES or gallery.identity is None:
        return face_ids[:REPRESENTATIVES]
    found = gallery.identity.vectors(face_ids)
    ids = [i for i in face_ids if i in found]
    matrix = np.stack([found[i] for i in ids])
    distance = np.linalg.norm(matrix - matrix.mean(axis=0), axis=1)
    return [ids[j] for j in np.argsort(distance, kind="stable")[:REPRESENTATIVES]]
