"""`facevlm index …`: add images to a gallery, search it, erase faces or the whole gallery, show its statistics;
the identity commands (reembed, verify, identify, cluster, name-cluster) live in identity_cli.py.

GALLERY is a gallery name ($FACEVLM_HOME/galleries/<name>, facevlm.index.names) or a local folder path."""

from __future__ import annotations

import json
from typing import Any

import click

from facevlm.errors import FacevlmError

CTX = {"help_option_names": ["-h", "--help"]}


@click.group("index", context_settings=CTX)
def index() -> None:
    """Face galleries (FAISS or Milvus + SQLite + image store): add, search, rm, drop, stats; identity:
    reembed, verify, identify, cluster, name-cluster."""


def _path(gallery: str) -> Any:
    from facevlm.index.clitools import gallery_path

    return gallery_path(gallery)


def _open(gallery: str, model: str | None = None, backend: str | None = None, **kw: Any) -> Any:
    from facevlm.index.clitools import open_gallery

    return open_gallery(gallery, model, backend, **kw)


@index.command("add", context_settings=CTX)
@click.argument("gallery")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--no-detect", is_flag=True, help="Each image is one pre-cropped face (no detector).")
@click.option("--no-label", is_flag=True, help="Skip expression pseudo-labels.")
@click.option("--identity", default=None, help="Identity of every face added (your own gallery only).")
@click.option("--dataset", is_flag=True, help="PATHS are stored face datasets (facevlm data ...), not images.")
@click.option("--model", default=None, help="FaceCLIP for a NEW gallery (name, folder or hub id).")
@click.option("--backend", type=click.Choice(["faiss", "milvus"]), default=None, help="Backend of a NEW gallery.")
@click.option("--identity-model", default=None, help="Identity model of a NEW gallery (default dlib-resnet-v1).")
@click.option("--batch-size", type=int, default=32, show_default=True)
def add_cmd(
    gallery: str,
    paths: tuple[str, ...],
    no_detect: bool,
    no_label: bool,
    identity: str | None,
    dataset: bool,
    model: str | None,
    backend: str | None,
    identity_model: str | None,
    batch_size: int,
) -> None:
    """Add images (files or folders, recursively) to GALLERY; re-running skips images already added,
    so an interrupted ingest is finished by running the same command again."""
    from collections import Counter

    from tqdm import tqdm

    from facevlm.index.ingest import IngestConfig, Ingestor, image_files

    g, emb = _open(gallery, model, backend, identity=identity_model)
    counts: Counter[str] = Counter()
    faces = 0
    try:
        ingestor = Ingestor(g, emb, IngestConfig(detect=not no_detect, label=not no_label, batch_size=batch_size))
        if dataset:
            from facevlm.data.store import iter_records, load_records

            results = (r for p in paths for r in ingestor.add_records(iter_records(load_records(p))))
            total = None
        else:
            files = image_files(paths)
            results, total = ingestor.add_paths(files, identity), len(files)
        for result in tqdm(results, total=total, unit="img", desc=f"index add {gallery}"):
            counts[result.status] += 1
            faces += len(result.face_ids)
            if result.status == "error":
                tqdm.write(f"skipped: {result.error}")
    finally:
        g.close()
    click.echo(
        f"{faces} faces added; "
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        + f"; gallery now {_count(gallery)} faces"
    )


def _count(gallery: str) -> int:
    from facevlm.index.store import Gallery

    g = Gallery.open(_path(gallery), read_only=True)
    try:
        return g.count()
    finally:
        g.close()


@index.command("search", context_settings=CTX)
@click.argument("gallery")
@click.argument("text", required=False)
@click.option("-k", "--k", "top_k", type=int, default=10, show_default=True)
@click.option("--face-id", type=int, default=None, help="Query by a gallery face instead of text.")
@click.option("--image", type=click.Path(exists=True, dir_okay=False), default=None, help="Query by a photo.")
@click.option("--match", type=click.Choice(["same_person", "look_alike"]), default="look_alike")
@click.option("--edit", default=None, help="Composed query: the face plus this change (e.g. 'smiling').")
@click.option("--filter", "filters", multiple=True, help="name=value[,value] (attribute or identity).")
@click.option("--min-prob", type=float, default=0.0, help="Minimum probability of filtered labels.")
@click.option("--no-detect", is_flag=True, help="--image is already a face crop (no detector).")
@click.option("--identity-model", default=None, help="same_person: the identity model expected.")
@click.option("--threshold", type=float, default=None, help="same_person: distance (default: the model's own).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def search_cmd(
    gallery: str,
    text: str | None,
    top_k: int,
    face_id: int | None,
    image: str | None,
    match: str,
    edit: str | None,
    filters: tuple[str, ...],
    min_prob: float,
    no_detect: bool,
    identity_model: str | None,
    threshold: float | None,
    as_json: bool,
) -> None:
    """Search GALLERY by TEXT, by a face (--face-id / --image), or a face plus an --edit. same_person
    answers the faces the identity model judges to be this person; look_alike, who looks alike."""
    from facevlm.index.clitools import experts, read_photo
    from facevlm.index.search import Query, Searcher

    if sum(x is not None for x in (text, face_id, image)) != 1:
        raise FacevlmError("give exactly one of TEXT, --face-id, --image")
    parsed: dict[str, list[str]] = {}
    for item in filters:
        name, sep, values = item.partition("=")
        if not sep or not values:
            raise FacevlmError(f"--filter {item!r}: expected name=value[,value]")
        parsed[name.strip()] = [v.strip() for v in values.split(",")]
    query = Query(
        text=text,
        face_id=face_id,
        image=read_photo(image) if image else None,
        match=match,
        edit=edit,
        filters=parsed,
        min_prob=min_prob,
        top_k=top_k,
    )
    g, emb = _open(gallery, read_only=True, identity=identity_model)
    try:
        finder = experts(bool(image) and not no_detect)
        hits = Searcher(g, emb, experts=finder, threshold=threshold).run(query)
    finally:
        g.close()
    rows = [
        {
            "rank": h.rank,
            "face_id": h.face.id,
            "score": round(h.score, 4),
            "distance": None if h.distance is None else round(h.distance, 4),
            "identity": h.face.identity,
            "source": h.face.source,
            "box": h.face.box,
            "thumbnail": h.face.thumb,
            "labels": {a.name: f"{a.value} ({a.origin} {a.prob:.2f})" for a in h.face.attributes},
        }
        for h in hits
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{query.kind} search in {gallery} (top {top_k})")
    for col in ("rank", "face", "score", "identity", "source", "labels"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["rank"]),
            str(r["face_id"]),
            f"{r['score']:.4f}",
            r["identity"] or "",
            r["source"],
            "; ".join(f"{k}={v}" for k, v in r["labels"].items()),
        )
    Console().print(table)


@index.command("rm", context_settings=CTX)
@click.argument("gallery")
@click.argument("face_ids", nargs=-1, type=int)
@click.option("--image", "image_ids", multiple=True, type=int, help="Erase every face of this image id.")
def rm_cmd(gallery: str, face_ids: tuple[int, ...], image_ids: tuple[int, ...]) -> None:
    """Erase faces: vectors, metadata, crops, thumbnails (and originals no other face uses)."""
    from facevlm.index.store import Gallery

    if not face_ids and not image_ids:
        raise FacevlmError("give FACE_IDS or --image IMAGE_ID")
    g = Gallery.open(_path(gallery), create=False)
    try:
        ids = list(face_ids) + [i for img in image_ids for i in g.list_ids(0, 1 << 30, img)]
        removed = g.remove_faces(ids)
    finally:
        g.close()
    click.echo(f"erased {removed} of {len(ids)} faces")
    if removed < len(ids):
        raise FacevlmError(f"{len(ids) - removed} face id(s) were not in gallery {gallery}")


@index.command("drop", context_settings=CTX)
@click.argument("gallery")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def drop_cmd(gallery: str, yes: bool) -> None:
    """Erase the whole GALLERY: every vector, metadata row, original, crop and thumbnail, and its folder."""
    from facevlm.index.store import Gallery, delete_gallery

    path = _path(gallery)
    g = Gallery.open(path, read_only=True)  # refuses (one line) what is not a gallery, before asking
    n = g.count()
    g.close()
    if not yes:
        click.confirm(f"erase gallery {path} and its {n} faces?", abort=True)
    delete_gallery(path)
    click.echo(f"erased gallery {path} ({n} faces)")


@index.command("stats", context_settings=CTX)
@click.argument("gallery")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--sensitive",
    is_flag=True,
    help="Also count sensitive attributes (apparent age, gender presentation, skin tone, race).",
)
def stats_cmd(gallery: str, as_json: bool, sensitive: bool) -> None:
    """Faces, images, identities, label counts, index kind and disk use of GALLERY."""
    from facevlm.index.store import Gallery

    g = Gallery.open(_path(gallery), read_only=True)
    try:
        stats = g.stats(sensitive=sensitive)
    finally:
        g.close()
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    for key, value in stats.items():
        if key != "attributes":
            click.echo(f"{key:12s} {value}")
    for key, value in stats["attributes"].items():
        click.echo(f"  {key:30s} {value}")


def _register_identity_commands() -> None:
    from facevlm.index import identity_cli

    for command in identity_cli.COMMANDS:
        index.add_command(command)


_register_identity_commands()
