"""What the `facevlm index` commands share: GALLERY arguments to folders, and opening a gallery with the
models it needs (its FaceCLIP and, where it has identity vectors, its identity model).

Kept apart from the command modules (cli.py, identity_cli.py) so both can use it without importing
each other. Heavy imports stay inside the functions: `facevlm index --help` loads no model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facevlm.errors import FacevlmError

DEFAULT_CLIP = "facevlm-clip-small"


def gallery_path(gallery: str) -> Path:
    from facevlm.index.names import cli_gallery_path

    return cli_gallery_path(gallery)


def load_identity(name: str | None = None, gallery: Any = None) -> Any:
    """The identity model named `name`, else the one `gallery` records, else the default; checked
    against the gallery's vectors (409, one line on the CLI)."""
    from facevlm.vision.identity import DEFAULT_IDENTITY_MODEL, load_identity_model

    space = getattr(gallery, "identity", None)
    model = load_identity_model(name or (space.spec.model if space is not None else DEFAULT_IDENTITY_MODEL))
    if space is not None:
        space.check(model, f"gallery {gallery.root.name}")
    return model


def open_gallery(
    gallery: str,
    model: str | None = None,
    backend: str | None = None,
    read_only: bool = False,
    identity: str | None = None,
    create: bool = True,
) -> tuple[Any, Any]:
    """(Gallery, FaceCLIP embedder) for a GALLERY argument. A new gallery (not `read_only`) is created with
    FaceCLIP `model`, `backend` and identity model `identity` (defaults: facevlm-clip-small, faiss,
    dlib-resnet-v1); an existing one keeps its own, and naming another is an error."""
    from facevlm.index.backends import BackendConfig
    from facevlm.index.embed import get_embedder
    from facevlm.index.store import Gallery, IdentitySpec

    path = gallery_path(gallery)
    exists = (path / "gallery.json").is_file()
    if not exists and (read_only or not create):
        raise FacevlmError(f"gallery {path} does not exist; add images with `facevlm index add`")
    spec = IdentitySpec.of(load_identity(identity)) if identity or not exists else None
    if exists:
        g = Gallery.open(path, model=model, read_only=read_only, identity=spec)
        return g, get_embedder(g.model)
    emb = get_embedder(model or DEFAULT_CLIP)
    cfg = BackendConfig(kind=backend or "faiss")
    return Gallery.open(path, model=emb.model, dim=emb.dim, backend=cfg, identity=spec), emb


def experts(detect: bool) -> Any:
    """The face finder for query photos (None: each photo is one face crop, used whole)."""
    from facevlm.index.ingest import FaceExperts, IngestConfig

    return FaceExperts(IngestConfig()) if detect else None


def read_photo(path: str) -> Any:
    """A local photo, decoded by the one safe decoder (the CLI's photos are the owner's, limits apply)."""
    from facevlm.image import decode_image

    return decode_image(Path(path).read_bytes(), where=path).image
