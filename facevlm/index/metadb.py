"""A gallery's SQLite metadata (meta.sqlite): the schema, the connection settings, and the mapping
between gallery entries and rows.

SQLite is the gallery's source of truth (each face's embedding is kept there too, so the vector index can
always be rebuilt from it; so is its identity descriptor, in `identity_vectors`, see identity_space.py).
Cluster runs (`cluster_runs`, `clusters`, `cluster_members`: people.py) refer to faces with ON DELETE
CASCADE, so erasing a face takes it out of every cluster and space without further bookkeeping.
This module says what is stored and how; `store.Gallery` decides when: it owns the transactions and the
write order that makes crashes harmless. Ids use AUTOINCREMENT so an id is never reused and a stale
vector can never alias a new face.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

from facevlm.index.entries import FaceEntry, FaceRow, ImageBlob
from facevlm.schema import SENSITIVE, VOCABULARY, AttributeValue

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
  id INTEGER PRIMARY KEY AUTOINCREMENT, sha256 TEXT UNIQUE NOT NULL, path TEXT, source TEXT,
  width INTEGER, height INTEGER, added REAL);
CREATE TABLE IF NOT EXISTS faces (
  id INTEGER PRIMARY KEY AUTOINCREMENT, image_id INTEGER REFERENCES images(id), box TEXT, landmarks TEXT,
  det_score REAL, identity TEXT, source TEXT, licence TEXT, meta TEXT, crop TEXT, thumb TEXT,
  added REAL, embedding BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS faces_image ON faces(image_id);
CREATE INDEX IF NOT EXISTS faces_identity ON faces(identity);
CREATE TABLE IF NOT EXISTS attributes (
  face_id INTEGER REFERENCES faces(id) ON DELETE CASCADE, name TEXT, value TEXT, origin TEXT,
  prob REAL, model TEXT);
CREATE INDEX IF NOT EXISTS attributes_face ON attributes(face_id);
CREATE INDEX IF NOT EXISTS attributes_value ON attributes(name, value, prob);
CREATE TABLE IF NOT EXISTS identity_vectors (
  face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE, model TEXT NOT NULL, vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS cluster_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL, model TEXT, method TEXT, threshold REAL, faces INTEGER);
CREATE TABLE IF NOT EXISTS clusters (
  id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL REFERENCES cluster_runs(id) ON DELETE CASCADE,
  identity TEXT);
CREATE INDEX IF NOT EXISTS clusters_run ON clusters(run_id);
CREATE TABLE IF NOT EXISTS cluster_members (
  cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
  face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE, PRIMARY KEY (cluster_id, face_id));
CREATE INDEX IF NOT EXISTS cluster_members_face ON cluster_members(face_id);
"""


def connect(root: Path, read_only: bool) -> sqlite3.Connection:
    """The gallery's connection, in autocommit mode (Gallery issues BEGIN/COMMIT itself). A writer uses
    WAL with synchronous=FULL, so a committed image survives a power cut, and creates the tables."""
    db = sqlite3.connect(root / "meta.sqlite", check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA foreign_keys=ON")
    if not read_only:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
    return db


def insert_image(cur: sqlite3.Cursor, image: ImageBlob, path: str | None) -> int:
    """The id of the image row for `image`, inserted unless an image with its sha256 is already stored."""
    cur.execute(
        "INSERT OR IGNORE INTO images(sha256, path, source, width, height, added) VALUES (?,?,?,?,?,?)",
        (image.sha256, path, image.source, image.width, image.height, time.time()),
    )
    return cur.execute("SELECT id FROM images WHERE sha256=?", (image.sha256,)).fetchone()[0]


def insert_face(
    cur: sqlite3.Cursor, image_id: int | None, entry: FaceEntry, vec: np.ndarray, crop: str | None, thumb: str | None
) -> int:
    """Insert one face row (with its embedding) and its attribute rows; returns the new face id."""
    cur.execute(
        "INSERT INTO faces(image_id, box, landmarks, det_score, identity, source, licence, meta,"
        " crop, thumb, added, embedding) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            image_id,
            json.dumps(entry.box),
            json.dumps(entry.landmarks),
            float(entry.det_score),
            entry.identity,
            entry.source,
            entry.licence,
            json.dumps(entry.meta, sort_keys=True),
            crop,
            thumb,
            time.time(),
            vec.tobytes(),
        ),
    )
    face_id = int(cur.lastrowid)
    cur.executemany(
        "INSERT INTO attributes VALUES (?,?,?,?,?,?)",
        [(face_id, a.name, a.value, a.origin, float(a.prob), a.model) for a in entry.attributes],
    )
    return face_id


def delete_faces(cur: sqlite3.Cursor, face_ids: list[int], image_ids: list[int]) -> list[tuple[int, str | None]]:
    """Delete faces (inside the caller's transaction) with their attributes; their identity vectors and
    cluster memberships go by ON DELETE CASCADE. Images of `image_ids` left without faces are deleted too
    and returned as (id, original's path) for the caller to remove after the commit."""
    cur.executemany("DELETE FROM attributes WHERE face_id=?", [(i,) for i in face_ids])
    cur.executemany("DELETE FROM faces WHERE id=?", [(i,) for i in face_ids])
    orphans = []
    for image_id in image_ids:
        row = cur.execute(
            "SELECT id, path FROM images WHERE id=? AND NOT EXISTS (SELECT 1 FROM faces WHERE image_id=images.id)",
            (image_id,),
        ).fetchone()
        if row is not None:
            orphans.append((row[0], row[1]))
    cur.executemany("DELETE FROM images WHERE id=?", [(iid,) for iid, _ in orphans])
    return orphans


def select_faces(db: sqlite3.Connection, face_ids: list[int]) -> tuple[list[tuple], dict[int, list[AttributeValue]]]:
    """The raw face rows (joined with their image) and attributes of the given ids, for `face_rows`."""
    marks = ",".join("?" * len(face_ids))
    ids = [int(i) for i in face_ids]
    rows = db.execute(
        "SELECT f.id, f.image_id, i.sha256, i.source, f.box, f.landmarks, f.det_score, f.identity, "
        f"f.source, f.licence, f.meta, f.crop, f.thumb, f.added FROM faces f LEFT JOIN images i "
        f"ON i.id=f.image_id WHERE f.id IN ({marks})",
        ids,
    ).fetchall()
    attrs: dict[int, list[AttributeValue]] = {}
    for fid, name, value, origin, prob, model in db.execute(
        f"SELECT * FROM attributes WHERE face_id IN ({marks})", ids
    ):
        attrs.setdefault(fid, []).append(AttributeValue(name, value, origin, min(1.0, prob), model))
    return rows, attrs


def face_rows(rows: list[tuple], attrs: dict[int, list[AttributeValue]]) -> dict[int, FaceRow]:
    """`select_faces`' result as FaceRows by id (JSON columns decoded, missing text as "")."""
    return {
        r[0]: FaceRow(
            r[0],
            r[1],
            r[2],
            r[3],
            json.loads(r[4]) if r[4] else None,
            json.loads(r[5] or "[]"),
            r[6],
            r[7],
            r[8] or "",
            r[9] or "",
            json.loads(r[10] or "{}"),
            r[11],
            r[12],
            r[13],
            attrs.get(r[0], []),
        )
        for r in rows
    }


def attribute_summary(rows: list[tuple[str, str, int]], sensitive: bool) -> dict[str, Any]:
    """Counts per categorical/binary value; numeric attributes (pose, age) as count and range instead of
    one line per distinct number."""
    out: dict[str, Any] = {}
    for name, value, count in rows:
        if name in SENSITIVE and not sensitive:
            continue
        spec = VOCABULARY.get(name)
        if spec is None or spec.kind != "numeric":
            out[f"{name}={value}"] = count
            continue
        n, lo, hi = out.get(name, (0, float("inf"), float("-inf")))
        out[name] = (n + count, min(lo, float(value)), max(hi, float(value)))
    return {k: (f"n={v[0]}, range [{v[1]:g}, {v[2]:g}]" if isinstance(v, tuple) else v) for k, v in out.items()}
