"""What the gateway's routers share, kept on `app.state`: the config, the one embedder, the one identity
model, the open galleries.

`Galleries` resolves gallery *names* under the configured root (facevlm.index.names; the API never takes
a path) and opens each gallery once per process (a gallery has one writer process: facevlm.index.store).
Every method here blocks (SQLite, FAISS, files): routers call them from the threadpool, never on the
event loop. A request holds its gallery with `use()`, so erasing a gallery waits for the requests that
are using it instead of closing it under them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from facevlm.errors import FacevlmError
from facevlm.image import ImageLimits
from facevlm.index.ingest import FaceExperts, IngestConfig, Ingestor
from facevlm.index.lifecycle import sweep_deleted
from facevlm.index.names import gallery_path, is_gallery_name
from facevlm.index.search import Searcher
from facevlm.index.store import Gallery, IdentitySpec, delete_gallery
from facevlm.serve.config import ServeConfig
from facevlm.vision.identity import load_identity_model

DELETE_WAIT_S = 30.0


@dataclass
class Opened:
    name: str
    gallery: Gallery
    searcher: Searcher
    ingestor: Ingestor
    users: int = 0


class Galleries:
    """Open galleries of this process with their searcher and ingestor (opened on first use). `identity` is
    the served identity model: galleries created here record it, galleries of another one are refused."""

    def __init__(self, cfg: ServeConfig, embedder: Any, identity: Any = None):
        self.cfg, self.embedder = cfg, embedder
        self.identity = identity or load_identity_model(cfg.identity.model, cfg.identity.weights or None)
        self.root = cfg.galleries_root()
        self.changed = threading.Condition()
        self.open: dict[str, Opened] = {}
        self.limits = ImageLimits(cfg.limits.max_image_bytes, cfg.limits.max_image_pixels)
        self.ingest_cfg = IngestConfig(detect=cfg.detect, label=cfg.label, limits=self.limits)
        self.experts = FaceExperts(self.ingest_cfg) if cfg.detect else None
        sweep_deleted(self.root)

    @contextmanager
    def use(self, name: str, create: bool = False) -> Iterator[Opened]:
        """The open gallery `name` for the duration of one request (404 unless it exists or `create`)."""
        with self.changed:
            entry = self.open.get(name) or self._open(name, create)
            entry.users += 1
        try:
            yield entry
        finally:
            with self.changed:
                entry.users -= 1
                self.changed.notify_all()

    def _open(self, name: str, create: bool) -> Opened:
        path = gallery_path(self.root, name)
        if not (path / "gallery.json").is_file() and not create:
            raise FacevlmError(f"gallery {name!r} does not exist", code="gallery_not_found", status_code=404)
        try:
            gallery = Gallery.open(
                path,
                model=self.embedder.model,
                dim=self.embedder.dim,
                backend=self.cfg.backend,
                identity=IdentitySpec.of(self.identity),
            )
        except FacevlmError as exc:  # the store's messages name the directory; the API names the gallery
            raise _named(exc, name, "cannot be opened") from None
        searcher = Searcher(
            gallery,
            self.embedder,
            pdv=self.cfg.pdv,
            sensitive=self.cfg.sensitive_attributes,
            experts=self.experts,
            identity=self.identity,
            threshold=self.cfg.identity.threshold,
        )
        self.open[name] = Opened(name, gallery, searcher, self.ingestor(gallery, self.ingest_cfg))
        return self.open[name]

    def ingestor(self, gallery: Gallery, cfg: IngestConfig) -> Ingestor:
        return Ingestor(gallery, self.embedder, cfg, self.identity)

    def delete(self, name: str) -> int:
        """Erase gallery `name` (vectors, metadata, files): wait for its requests, close it, delete it.
        Returns how many faces it held."""
        path = gallery_path(self.root, name)
        deadline = time.monotonic() + DELETE_WAIT_S
        with self.changed:
            while (entry := self.open.get(name)) is not None and entry.users:
                if not self.changed.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise FacevlmError(f"gallery {name!r} is busy; try again", code="gallery_busy", status_code=409)
            if entry is not None:
                entry.gallery.close()
                del self.open[name]
            if not (path / "gallery.json").is_file():
                raise FacevlmError(f"gallery {name!r} does not exist", code="gallery_not_found", status_code=404)
            try:
                return delete_gallery(path)
            except FacevlmError as exc:
                raise _named(exc, name, "cannot be erased") from None

    def names(self) -> list[str]:
        """Galleries under the root (only directories that are valid names: no tombstones, no strays)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if is_gallery_name(p.name) and (p / "gallery.json").is_file())

    def close(self) -> None:
        with self.changed:
            for entry in self.open.values():
                entry.gallery.close()
            self.open.clear()


def _named(exc: FacevlmError, name: str, fallback: str) -> FacevlmError:
    """The store's error about a directory, retold about the gallery name (no server path in responses)."""
    reason = _REASONS.get(exc.code, fallback)
    return FacevlmError(f"gallery {name!r} {reason}", code=exc.code, status_code=exc.status_code)


_REASONS = {
    "gallery_busy": "is open for writing by another process (the CLI?); stop it or try again",
    "gallery_model_mismatch": "holds embeddings of another model than the one served here",
    "identity_model_mismatch": "holds identity vectors of another identity model than the one served here",
    "gallery_not_found": "does not exist",
}


def galleries(request: Request) -> Galleries:
    return request.app.state.galleries


def config(request: Request) -> ServeConfig:
    return request.app.state.config
