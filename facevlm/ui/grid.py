"""The one results grid: search hits (from `/v1/faces/search`, or from a `face_search` call the gateway
ran inside a chat) as thumbnails with a caption each. The chat page and the gallery page both build it
here, so a hit looks the same wherever it comes from."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import gradio as gr
from PIL import Image

from facevlm.ui.client import Gateway, GatewayError

GRID_COLUMNS = 5
FETCHES = 8  # thumbnails fetched at once: a 200-face page must not be 200 simultaneous requests


def results_grid(label: str, elem_id: str) -> gr.Gallery:
    return gr.Gallery(
        label=label,
        elem_id=elem_id,
        columns=GRID_COLUMNS,
        fit_columns=False,  # a thumbnail keeps its size however few hits there are
        height="auto",
        object_fit="contain",
        allow_preview=True,
        interactive=False,
        format="jpeg",
        buttons=["fullscreen"],  # no "share"
    )


def selection_grid(label: str, elem_id: str) -> gr.Gallery:
    """A grid the user picks one tile from (a face to erase, a cluster to name): no preview, one more column."""
    return gr.Gallery(
        label=label,
        elem_id=elem_id,
        columns=GRID_COLUMNS + 1,
        fit_columns=False,
        height="auto",
        allow_preview=False,
        interactive=False,
        format="jpeg",
        buttons=["fullscreen"],
    )


def caption(face: dict[str, Any]) -> str:
    """`#1 face 12 · 0.834 · happy · Alice`: what a person needs to tell hits apart and act on one."""
    parts = [f"face {face.get('id')}"]
    if "rank" in face:
        parts.insert(0, f"#{face['rank']}")
    if isinstance(face.get("score"), int | float):
        parts.append(f"{face['score']:.3f}")
    parts += [str(a["value"]) for a in face.get("attributes") or [] if a.get("name") == "expression"][:1]
    if face.get("identity"):
        parts.append(str(face["identity"]))
    return " · ".join(parts)


async def thumbnails(
    gw: Gateway, faces: list[dict[str, Any]], label: Callable[[dict[str, Any]], str] = caption
) -> tuple[list[dict[str, Any]], list[tuple[Image.Image, str]]]:
    """The faces that have a thumbnail, and a (thumbnail, label) grid item for each, in the same order;
    fetched FETCHES at a time with the user's key. A face erased meanwhile (404) is left out rather than
    failing the whole grid."""

    slots = asyncio.Semaphore(FETCHES)

    async def one(face: dict[str, Any]) -> Image.Image | None:
        url = face.get("thumbnail_url")
        if not url:
            return None
        try:
            async with slots:
                return await gw.image(url)
        except GatewayError as exc:
            if exc.status_code == 404:
                return None
            raise

    images = await asyncio.gather(*(one(face) for face in faces))
    kept = [(face, image) for face, image in zip(faces, images) if image is not None]
    return [face for face, _ in kept], [(image, label(face)) for face, image in kept]
