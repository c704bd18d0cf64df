"""The gallery page: add photos, list the faces (one thumbnail each, with its photo), erase a face or a
whole photo, search the gallery by description, cluster the unlabelled faces and name a cluster. Every
button is one or two gateway routes (docs/api.md "Galleries", "Search", "Clusters")."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from facevlm.ui.client import Gateway, GatewayError
from facevlm.ui.context import Context, failure
from facevlm.ui.grid import results_grid, selection_grid, thumbnails

PAGE = 200  # faces listed at once (the route allows up to 1000)
TOP_K = 10


def face_caption(face: dict[str, Any]) -> str:
    """`face 12 · photo 5 (obama.jpg) · happy · Alice`: enough to pick a face or a photo to erase."""
    parts = [f"face {face['id']}", f"photo {face.get('image_id')} ({face.get('source')})"]
    parts += [str(a["value"]) for a in face.get("attributes") or [] if a.get("name") == "expression"][:1]
    return " · ".join(parts + ([str(face["identity"])] if face.get("identity") else []))


async def listing(gw: Gateway, gallery: str) -> tuple[list[dict[str, Any]], list[tuple[Any, str]], str]:
    """The first PAGE faces of `gallery`: their records, (thumbnail, caption) items and a summary line."""
    try:
        page = await gw.faces(gallery, limit=PAGE)
    except GatewayError as exc:
        if exc.status_code == 404:
            return [], [], f"gallery '{gallery}' has no faces yet (adding photos creates it)"
        raise
    faces, items = await thumbnails(gw, page.get("data") or [], face_caption)
    more = f" (the first {PAGE}; more are stored)" if page.get("has_more") else ""
    photos = len({f.get("image_id") for f in faces})
    return faces, items, f"gallery '{gallery}': {len(faces)} face(s) from {photos} photo(s){more}"


def cluster_caption(front: dict[str, Any]) -> str:
    cluster = front["cluster"]
    named = f" · {cluster['identity']}" if cluster.get("identity") else ""
    return f"cluster {cluster['id']} · {cluster['size']} face(s){named}"


def build_gallery(ctx: Context) -> None:
    faces_state = gr.State([])  # the listed faces' records, in grid order
    picked = gr.State(None)  # the face record selected in the grid
    clusters_state = gr.State([])
    picked_cluster = gr.State(None)

    with gr.Row():
        upload = gr.File(label="Photos", file_count="multiple", file_types=["image"], elem_id="gallery-upload")
        with gr.Column():
            identity = gr.Textbox(label="Who is in these photos (optional)", elem_id="gallery-identity")
            add = gr.Button("Add to gallery", variant="primary", elem_id="gallery-add")
            refresh = gr.Button("List faces", elem_id="gallery-list")
    note = gr.Markdown(elem_id="gallery-note")
    faces_grid = selection_grid("Faces (select one to erase it or its photo)", "gallery-faces")
    with gr.Row():
        delete_face = gr.Button("Erase selected face", variant="stop", elem_id="gallery-delete-face")
        delete_photo = gr.Button("Erase its whole photo", variant="stop", elem_id="gallery-delete-photo")
    with gr.Row():
        query = gr.Textbox(label="Find faces", placeholder="a smiling person with glasses", elem_id="gallery-query")
        search = gr.Button("Search", elem_id="gallery-search")
    grid = results_grid("Search results", "gallery-results")
    with gr.Row():
        cluster = gr.Button("Cluster unlabelled faces", elem_id="gallery-cluster")
        name = gr.Textbox(label="Name the selected cluster", elem_id="gallery-cluster-name")
        apply_name = gr.Button("Name cluster", elem_id="gallery-name-cluster")
    clusters_grid = selection_grid("Clusters (one face each; select one to name it)", "gallery-clusters")

    async def show(key: str, gallery: str | None, message: str = "") -> tuple[Any, ...]:
        """Re-list the gallery after any change; `message` says what the change was."""
        if not gallery:
            return [], [], None, "⚠️ choose or type a gallery name first"
        try:
            async with Gateway(ctx.api_url, key) as gw:
                faces, items, summary = await listing(gw, gallery)
        except Exception as exc:  # every failure is one readable line
            return [], [], None, " ".join(filter(None, [message, failure(exc)]))
        return faces, items, None, " ".join(filter(None, [message, summary]))

    async def add_photos(paths: list[str] | None, who: str, key: str, gallery: str | None) -> tuple[Any, ...]:
        if not paths:
            return (*(await show(key, gallery, "⚠️ choose photos to add first")), gr.File())
        if not gallery:
            return [], [], None, "⚠️ choose or type a gallery name first", gr.File()
        try:
            photos = [(Path(p).name, Path(p).read_bytes()) for p in paths]
            async with Gateway(ctx.api_url, key) as gw:
                added = await gw.add_photos(gallery, photos, who.strip() or None)
        except Exception as exc:
            return [], [], None, failure(exc), gr.File()
        by_status: dict[str, int] = {}
        for image in added.get("images") or []:
            by_status[image["status"]] = by_status.get(image["status"], 0) + 1
        counts = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(by_status.items()))
        message = f"added {len(added.get('data') or [])} face(s) ({counts})."
        return (*(await show(key, gallery, message)), gr.File(value=None))

    def select(faces: list[dict[str, Any]], event: gr.SelectData) -> tuple[Any, str]:
        face = faces[event.index] if event.index is not None and event.index < len(faces) else None
        return face, f"selected {face_caption(face)}" if face else ""

    async def erase(whole_photo: bool, face: dict[str, Any] | None, key: str, gallery: str | None) -> tuple[Any, ...]:
        if face is None or not gallery:
            return (*(await show(key, gallery, "⚠️ select a face first")),)
        try:
            async with Gateway(ctx.api_url, key) as gw:
                if whole_photo and face.get("image_id") is not None:
                    done = await gw.delete_image(gallery, str(face["image_id"]))
                else:
                    done = await gw.delete_face(gallery, str(face["id"]))
        except Exception as exc:
            return (*(await show(key, gallery, failure(exc))),)
        return await show(key, gallery, f"erased face(s) {', '.join(done.get('ids') or [])}.")

    async def find(text: str, key: str, gallery: str | None) -> tuple[Any, str]:
        if not text.strip() or not gallery:
            return None, "⚠️ type a description and choose a gallery first"
        try:
            async with Gateway(ctx.api_url, key) as gw:
                hits = await gw.search({"gallery": gallery, "query": {"text": text.strip()}, "top_k": TOP_K})
                _, items = await thumbnails(gw, hits)
        except Exception as exc:
            return None, failure(exc)
        return items, f"{len(hits)} face(s) match “{text.strip()}”"

    async def show_clusters(run: bool, key: str, gallery: str | None) -> tuple[Any, ...]:
        if not gallery:
            return [], [], None, "⚠️ choose or type a gallery name first"
        try:
            async with Gateway(ctx.api_url, key) as gw:
                listed = await (gw.cluster(gallery) if run else gw.clusters(gallery))
                clusters = [c for c in listed.get("data") or [] if c.get("representatives")]
                fronts = [{**c["representatives"][0], "cluster": c} for c in clusters]
                shown, items = await thumbnails(gw, fronts, cluster_caption)
        except Exception as exc:
            return [], [], None, failure(exc)
        clusters = [front["cluster"] for front in shown]
        return clusters, items, None, f"{len(clusters)} cluster(s) of {listed.get('faces', 0)} unlabelled face(s)"

    def select_cluster(clusters: list[dict[str, Any]], event: gr.SelectData) -> tuple[Any, str]:
        chosen = clusters[event.index] if event.index is not None and event.index < len(clusters) else None
        return chosen, f"selected cluster {chosen['id']} ({chosen['size']} faces)" if chosen else ""

    async def name_it(
        clusters: list[dict[str, Any]], chosen: dict[str, Any] | None, who: str, key: str, gallery: str | None
    ) -> tuple[Any, ...]:
        if chosen is None or not who.strip() or not gallery:
            return clusters, gr.Gallery(), chosen, "⚠️ select a cluster and type a name first"
        try:
            async with Gateway(ctx.api_url, key) as gw:
                named = await gw.name_cluster(gallery, str(chosen["id"]), who.strip())
        except Exception as exc:
            return clusters, gr.Gallery(), chosen, failure(exc)
        listed = await show_clusters(False, key, gallery)
        return *listed[:3], f"named the {named.get('size')} face(s) of cluster {chosen['id']} “{who.strip()}”"

    listed = [faces_state, faces_grid, picked, note]
    page = [ctx.key, ctx.gallery]
    add.click(add_photos, [upload, identity, *page], [*listed, upload])
    refresh.click(show, page, listed)
    ctx.gallery.change(show, page, listed)
    faces_grid.select(select, [faces_state], [picked, note])
    delete_face.click(partial(erase, False), [picked, *page], listed)
    delete_photo.click(partial(erase, True), [picked, *page], listed)
    search.click(find, [query, *page], [grid, note])
    query.submit(find, [query, *page], [grid, note])
    clustered = [clusters_state, clusters_grid, picked_cluster, note]
    cluster.click(partial(show_clusters, True), page, clustered)
    clusters_grid.select(select_cluster, [clusters_state], [picked_cluster, note])
    apply_name.click(name_it, [clusters_state, picked_cluster, name, *page], clustered)
