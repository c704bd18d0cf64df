"""`facevlm index reembed`: give an existing gallery its identity vectors (or recompute them with another
identity model), resumably.

Galleries made before identity search hold FaceCLIP vectors only. The migration computes each face's
identity descriptor from what the gallery stored: the original image with the face's box and landmarks
(exactly what ingest computes), else its stored crop used whole (the 5 landmarks are then predicted on
the crop); a face with neither has no pixels left and stays out of the identity space. Descriptors are
committed in batches to `identity_vectors`, so a crash (kill -9) loses at most one batch and re-running
the command skips every face already done. Only when every face is done is the identity index built
and the model recorded in gallery.json: until then the gallery answers FaceCLIP queries as before and
refuses identity ones, so a half-migrated gallery is never searched as if it were complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from facevlm.batching import batched
from facevlm.errors import FacevlmError
from facevlm.index.identity_space import IdentitySpec, insert_rows, missing_ids
from facevlm.index.store import Gallery


@dataclass
class ReembedProgress:
    done: int  # faces with a descriptor of the model so far
    total: int  # faces of the gallery
    no_pixels: int = 0  # faces skipped in this batch: no stored original or crop


def reembed(gallery: Gallery, model: Any, *, replace: bool = False, batch_size: int = 32) -> Iterator[ReembedProgress]:
    """Migrate `gallery` to identity model `model`, yielding progress after each committed batch; the
    last step records the model in gallery.json. A gallery with another model's vectors needs
    `replace` (its vectors are dropped first, and its identity queries refused until done)."""
    from facevlm.vision.identity import FacePlace

    if batch_size < 1:
        raise FacevlmError(f"batch size {batch_size} must be >= 1")
    spec = IdentitySpec.of(model)
    if gallery.identity is not None and gallery.identity.spec.model != spec.model:
        if not replace:
            raise FacevlmError(
                f"gallery {gallery.root.name} holds {gallery.identity.spec.model} identity vectors; "
                f"add --replace to recompute them with {spec.model}",
                code="identity_model_mismatch",
                status_code=409,
            )
        gallery.set_identity_space(None)  # first: from here on nothing trusts the old vectors
    with gallery.lock:
        gallery.db.execute("DELETE FROM identity_vectors WHERE model != ?", (spec.model,))
        todo = missing_ids(gallery.db, spec.model)
        total = gallery.count()
    for chunk in batched(iter(todo), batch_size):
        ids, vectors, skipped = [], [], 0
        for face_id, image, place in _sources(gallery, chunk, FacePlace):
            if image is None:
                skipped += 1
                continue
            ids.append(face_id)
            vectors.append(model.embed(image, [place])[0])
        with gallery.lock:
            cur = gallery.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                if ids:  # no face can vanish meanwhile: this process is the gallery's one writer
                    insert_rows(cur, spec.model, ids, np.asarray(vectors))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            done = int(
                gallery.db.execute("SELECT count(*) FROM identity_vectors WHERE model=?", (spec.model,)).fetchone()[0]
            )
        yield ReembedProgress(done, total, skipped)
    if gallery.identity is None or gallery.identity.spec != spec:
        gallery.set_identity_space(spec)  # builds the index from SQLite, then records the model
    else:
        gallery.identity.rebuild()


def _sources(gallery: Gallery, face_ids: list[int], place: Any) -> Iterator[tuple[int, Any, Any]]:
    """(face id, upright RGB image or None, FacePlace) per face: the original with the face's stored box
    and landmarks, else the stored crop used whole."""
    from facevlm.image import open_image

    marks = ",".join("?" * len(face_ids))
    with gallery.lock:
        rows = gallery.db.execute(
            "SELECT f.id, f.box, f.landmarks, f.meta, f.crop, i.path FROM faces f LEFT JOIN images i "
            f"ON i.id=f.image_id WHERE f.id IN ({marks}) ORDER BY f.id",
            [int(i) for i in face_ids],
        ).fetchall()
    for face_id, box, landmarks, meta, crop, original in rows:
        if original and (gallery.root / original).is_file():
            fmt = json.loads(meta or "{}").get("landmark_format", "dlib5")
            points = np.asarray(json.loads(landmarks or "[]"), np.float32).reshape(-1, 2)
            box = json.loads(box) if box else None
            yield face_id, open_image(gallery.root / original), place(None if box is None else tuple(box), points, fmt)
        elif crop and (gallery.root / crop).is_file():
            yield face_id, open_image(gallery.root / crop), place()
        else:
            yield face_id, None, None
