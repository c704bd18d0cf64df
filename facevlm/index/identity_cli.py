"""The identity commands of `facevlm index`: migrate a gallery to identity vectors (reembed), verify two
faces, recognise a face among a gallery's labelled people (identify), group unlabelled faces by person
(cluster) and name a group (name-cluster). Registered on the `index` group by facevlm/index/cli.py."""

from __future__ import annotations

import json
from typing import Any

import click

from facevlm.errors import FacevlmError

CTX = {"help_option_names": ["-h", "--help"]}


def _echo(data: Any, as_json: bool, line: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else line)


@click.command("reembed", context_settings=CTX)
@click.argument("gallery")
@click.option("--identity-model", default=None, help="Identity model (default: the gallery's, else dlib-resnet-v1).")
@click.option("--replace", is_flag=True, help="Recompute vectors made by another identity model.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Faces per committed batch.")
def reembed_cmd(gallery: str, identity_model: str | None, replace: bool, batch_size: int) -> None:
    """Give GALLERY identity vectors (galleries made before identity search), or recompute them with
    another --identity-model. Resumable: re-running after a crash skips the faces already done."""
    from tqdm import tqdm

    from facevlm.index.clitools import gallery_path, load_identity
    from facevlm.index.reembed import reembed
    from facevlm.index.store import Gallery

    g = Gallery.open(gallery_path(gallery), create=False)
    try:
        model = load_identity(identity_model or (g.identity.spec.model if g.identity is not None else None))
        skipped, last = 0, None
        with tqdm(unit="face", desc=f"index reembed {gallery}") as bar:
            for step in reembed(g, model, replace=replace, batch_size=batch_size):
                bar.total = step.total
                bar.n = step.done
                bar.refresh()
                skipped, last = skipped + step.no_pixels, step
        done = g.identity.count() if g.identity is not None else 0
        total = g.count() if last is None else last.total
    finally:
        g.close()
    extra = f"; {skipped} without stored pixels stay out of it" if skipped else ""
    click.echo(f"{done} of {total} faces have {model.name} identity vectors{extra}")


def _face(ref: Any, model: Any, finder: Any, where: str) -> Any:
    """A verify/identify face: an image path, or (gallery, face id)."""
    from facevlm.index.clitools import gallery_path, read_photo
    from facevlm.index.recognize import gallery_face, upload_face
    from facevlm.index.store import Gallery

    if isinstance(ref, str):
        return upload_face(model, finder, read_photo(ref), where)
    name, face_id = ref
    g = Gallery.open(gallery_path(name), read_only=True)
    try:
        return gallery_face(g, name, int(face_id), model)
    finally:
        g.close()


@click.command("verify", context_settings=CTX)
@click.argument("images", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--face", "faces", nargs=2, multiple=True, metavar="GALLERY FACE_ID", help="A gallery face.")
@click.option("--identity-model", default=None, help="Identity model (default dlib-resnet-v1).")
@click.option("--threshold", type=float, default=None, help="Same-person distance (default: the model's own).")
@click.option("--no-detect", is_flag=True, help="IMAGES are face crops (no detector).")
@click.option("--json", "as_json", is_flag=True)
def verify_cmd(
    images: tuple[str, ...],
    faces: tuple[tuple[str, str], ...],
    identity_model: str | None,
    threshold: float | None,
    no_detect: bool,
    as_json: bool,
) -> None:
    """Are two faces the same person? Give two IMAGES (one face each), two --face GALLERY FACE_ID, or one
    of each."""
    from facevlm.index.clitools import experts, load_identity
    from facevlm.index.recognize import resolve_threshold, verify

    refs: list[Any] = [*images, *faces]
    if len(refs) != 2:
        raise FacevlmError(f"give exactly two faces (IMAGES and/or --face GALLERY FACE_ID), got {len(refs)}")
    model = load_identity(identity_model)
    finder = experts(not no_detect) if images else None
    a, b = (_face(ref, model, finder, str(ref if isinstance(ref, str) else ref[0])) for ref in refs)
    result = verify(a, b, resolve_threshold(model, requested=threshold), model.name)
    t = result.threshold
    verdict = "same person" if result.same else "different people"
    _echo(
        {"distance": result.distance, "same": result.same, "threshold": t.value, "threshold_source": t.source},
        as_json,
        f"{verdict}: distance {result.distance:.4f} {'<' if result.same else '>='} threshold {t.value:g} "
        f"({t.source}{': ' + t.reference if t.reference else ''}; {model.name})",
    )


@click.command("identify", context_settings=CTX)
@click.argument("gallery")
@click.argument("image", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--face-id", type=int, default=None, help="A face of GALLERY instead of IMAGE.")
@click.option("-k", "--k", "top_k", type=int, default=5, show_default=True, help="Labelled matches to list.")
@click.option("--threshold", type=float, default=None, help="Same-person distance (default: the model's own).")
@click.option("--no-detect", is_flag=True, help="IMAGE is a face crop (no detector).")
@click.option("--json", "as_json", is_flag=True)
def identify_cmd(
    gallery: str,
    image: str | None,
    face_id: int | None,
    top_k: int,
    threshold: float | None,
    no_detect: bool,
    as_json: bool,
) -> None:
    """Who is this? The identity of the nearest face labelled in GALLERY within the threshold, else
    unknown (never a name the gallery does not hold)."""
    from facevlm.index.clitools import experts, gallery_path, load_identity, read_photo
    from facevlm.index.recognize import gallery_face, identify, resolve_threshold, upload_face
    from facevlm.index.store import Gallery

    if (image is None) == (face_id is None):
        raise FacevlmError("give exactly one of IMAGE or --face-id")
    g = Gallery.open(gallery_path(gallery), read_only=True)
    try:
        model = load_identity(None, g)
        if face_id is not None:
            query = gallery_face(g, gallery, face_id, model)
        else:
            query = upload_face(model, experts(not no_detect), read_photo(image), image)
        result = identify(g, gallery, query, resolve_threshold(model, requested=threshold), model.name, top_k)
    finally:
        g.close()
    matches = [
        {"face_id": m.face.id, "identity": m.face.identity, "distance": round(m.distance, 4)} for m in result.matches
    ]
    t, nearest = result.threshold.value, result.nearest_distance
    if nearest is None:
        line = f"unknown (no labelled faces in {gallery})"
    elif result.identity is None:
        line = f"unknown (nearest labelled face at {nearest:.4f} >= threshold {t:g})"
    else:
        line = f"{result.identity} (distance {nearest:.4f} < threshold {t:g})"
    _echo({"identity": result.identity, "nearest_distance": nearest, "threshold": t, "matches": matches}, as_json, line)


def _cluster_dict(cluster: Any, g: Any) -> dict[str, Any]:
    rows = g.faces(cluster.representatives)
    return {
        "id": cluster.id,
        "run_id": cluster.run_id,
        "identity": cluster.identity,
        "size": len(cluster.face_ids),
        "face_ids": cluster.face_ids,
        "thumbnails": [str(g.root / rows[i].thumb) for i in cluster.representatives if i in rows and rows[i].thumb],
    }


@click.command("cluster", context_settings=CTX)
@click.argument("gallery")
@click.option("--threshold", type=float, default=None, help="Same-person distance (default: the model's own).")
@click.option("--method", default="auto", show_default=True, help="facevlm.index.cluster.METHODS.")
@click.option("--json", "as_json", is_flag=True)
def cluster_cmd(gallery: str, threshold: float | None, method: str, as_json: bool) -> None:
    """Group the unlabelled faces of GALLERY by person; name a group with `facevlm index name-cluster`."""
    from facevlm.index.clitools import gallery_path, load_identity
    from facevlm.index.people import cluster_gallery
    from facevlm.index.recognize import resolve_threshold
    from facevlm.index.store import Gallery

    g = Gallery.open(gallery_path(gallery), create=False)
    try:
        model = load_identity(None, g)
        value = resolve_threshold(model, requested=threshold).value
        run = cluster_gallery(g, gallery, threshold=value, method=method)
        clusters = [_cluster_dict(c, g) for c in run.clusters]
    finally:
        g.close()
    lines = [f"run {run.id}: {run.faces} unlabelled faces in {len(clusters)} clusters ({method}, threshold {value:g})"]
    lines += [f"  cluster {c['id']}: {c['size']} faces {c['face_ids'][:8]}" for c in clusters]
    _echo({"run_id": run.id, "threshold": value, "method": method, "clusters": clusters}, as_json, "\n".join(lines))


@click.command("name-cluster", context_settings=CTX)
@click.argument("gallery")
@click.argument("cluster_id", type=int)
@click.argument("identity")
def name_cluster_cmd(gallery: str, cluster_id: int, identity: str) -> None:
    """Set IDENTITY on every face of cluster CLUSTER_ID of GALLERY (from `facevlm index cluster`)."""
    from facevlm.index.clitools import gallery_path
    from facevlm.index.people import name_cluster
    from facevlm.index.store import Gallery

    g = Gallery.open(gallery_path(gallery), create=False)
    try:
        cluster = name_cluster(g, gallery, cluster_id, identity)
    finally:
        g.close()
    click.echo(f"cluster {cluster.id}: {len(cluster.face_ids)} faces are now {cluster.identity!r}")


COMMANDS = (reembed_cmd, verify_cmd, identify_cmd, cluster_cmd, name_cluster_cmd)
