"""A gallery directory's life on disk: the one-writer lock, and whole-gallery deletion by tombstone.

Both are about the directory as a whole rather than its contents, and both must be safe against a
second process and a crash: the lock file (gallery.lock, holding the writer's pid) keeps a second writer
from racing the start-up orphan clean-up and the vector index; deletion renames the directory to a
hidden tombstone before removing it, so a crash midway never leaves a half-erased gallery that still
opens, and `sweep_deleted` finishes what a crash left. `store.delete_gallery` is the public entry
point that clears the vectors first.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from pathlib import Path
from typing import IO

from facevlm.errors import FacevlmError

TOMBSTONE = ".facevlm-deleted-"


def take_lock(root: Path) -> IO[str]:
    """One writer process per gallery: a second one would race the orphan clean-up and the index.
    Returns the open lock file; closing it releases the lock."""
    root.mkdir(parents=True, exist_ok=True)
    fh = open(root / "gallery.lock", "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise FacevlmError(
            f"gallery {root} is open for writing by pid {holder}; stop it or use its HTTP API",
            code="gallery_busy",
            status_code=409,
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def entomb(root: Path) -> None:
    """Remove a closed gallery's directory: under its lock (refused, 409, while another process writes
    to it), rename it to a tombstone (atomic: it no longer opens as a gallery), then delete that."""
    lock = take_lock(root)
    tomb = root.with_name(f"{TOMBSTONE}{root.name}-{os.getpid()}-{time.time_ns()}")
    try:
        os.replace(root, tomb)
    finally:
        lock.close()
    shutil.rmtree(tomb)


def sweep_deleted(root: Path) -> int:
    """Remove tombstones that a crash during `delete_gallery` left in galleries root `root`."""
    found = sorted(Path(root).glob(f"{TOMBSTONE}*")) if Path(root).is_dir() else []
    for tomb in found:
        shutil.rmtree(tomb, ignore_errors=True)
    return len(found)
