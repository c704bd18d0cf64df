"""Robustness: an inner task (zero-shot, identity or retrieval) re-run on corrupted copies of the
test images (Gaussian blur, JPEG, down-scaling, occlusion) at several severities. All versions share
the item space, so the bootstrap CIs, and paired comparisons between models, are per severity."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from facevlm.errors import FacevlmError
from facevlm.eval.metrics import MetricFn, merged, narrow, prefixed
from facevlm.eval.tasks import Context, Part, TaskResult, run_task

TASK = "robustness"
SEVERITIES = 3


def _blur(im: Any, s: int, rng: np.random.Generator) -> Any:
    from PIL import ImageFilter

    return im.filter(ImageFilter.GaussianBlur([0.75, 1.75, 3.5][s - 1] * min(im.size) / 112))


def _jpeg(im: Any, s: int, rng: np.random.Generator) -> Any:
    from facevlm.image import open_image

    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=[40, 15, 5][s - 1])
    return open_image(buf.getvalue())


def _downscale(im: Any, s: int, rng: np.random.Generator) -> Any:
    from PIL import Image

    f = [2, 4, 8][s - 1]
    small = im.resize((max(1, im.width // f), max(1, im.height // f)), Image.BILINEAR)
    return small.resize(im.size, Image.BILINEAR)


def _occlusion(im: Any, s: int, rng: np.random.Generator) -> Any:
    """A grey square covering 10/25/45 % of the crop at a seeded random position."""
    from PIL import ImageDraw

    side = np.sqrt([0.10, 0.25, 0.45][s - 1])
    w, h = int(im.width * side), int(im.height * side)
    x, y = int(rng.integers(0, im.width - w + 1)), int(rng.integers(0, im.height - h + 1))
    out = im.copy()
    ImageDraw.Draw(out).rectangle([x, y, x + w - 1, y + h - 1], fill=(128, 128, 128))
    return out


CORRUPTIONS: dict[str, Callable[[Any, int, np.random.Generator], Any]] = {
    "blur": _blur,
    "jpeg": _jpeg,
    "downscale": _downscale,
    "occlusion": _occlusion,
}


def corrupt(images: list[Any], name: str, severity: int, seed: int) -> list[Any]:
    if name not in CORRUPTIONS:
        raise FacevlmError(f"robustness: unknown corruption {name!r}; expected {', '.join(CORRUPTIONS)}")
    if not 1 <= severity <= SEVERITIES:
        raise FacevlmError(f"robustness: severity {severity} outside 1..{SEVERITIES}")
    rng = np.random.default_rng(seed)
    return [CORRUPTIONS[name](im, severity, rng) for im in images]


def _pick(part: Any, key: str) -> MetricFn:
    fn = narrow(part.fn, key, part.items)
    return lambda idx: {key: fn(idx)[key]}


def run(model: Any, data: Any, cfg: Any, ctx: Context) -> list[TaskResult]:
    quiet = replace(ctx, n_boot=0, group_attributes=())
    inner_cfg = replace(cfg, headline="")
    clean = run_task(cfg.inner, model, data, inner_cfg, quiet)[0]
    key = cfg.headline or clean.headline
    fns: list[MetricFn] = [prefixed(_pick(clean.parts[0], key), "clean/")]
    names = []
    for name in cfg.corruptions:
        for severity in cfg.severities:
            tag = f"{name}@{severity}"
            version = data.with_images(corrupt(data.images, name, severity, ctx.seed), tag)
            res = run_task(cfg.inner, model, version, inner_cfg, quiet)[0]
            fns.append(prefixed(_pick(res.parts[0], key), f"{tag}/"))
            names.append(tag)
    inner = merged(fns)

    def fn(idx: np.ndarray) -> dict[str, float]:
        out = inner(idx)
        out[f"mean_corrupted/{key}"] = float(np.mean([out[f"{t}/{key}"] for t in names]))
        return out

    part = Part(fn, clean.parts[0].items, {a: v for a, v in ctx.group_labels(data).items()})
    return [
        ctx.score(
            TASK,
            data.name,
            f"mean_corrupted/{key}",
            [part],
            {
                "inner": cfg.inner,
                "metric": key,
                "corruptions": list(cfg.corruptions),
                "severities": list(cfg.severities),
            },
        )
    ]
