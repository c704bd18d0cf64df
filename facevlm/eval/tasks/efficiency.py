"""Efficiency on this machine: image embeddings per second, milliseconds per search query (encode
the query + exact search over the dataset's gallery), and generated tokens per second for chat
models. Timings are medians over `repeats`; they are reported, never asserted."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from facevlm.eval.tasks import Context, TaskResult

TASK = "efficiency"


def _median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: first calls pay for allocations and lazy initialisation
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(model: Any, data: Any, cfg: Any, ctx: Context) -> list[TaskResult]:
    n = min(len(data), cfg.n_images)
    images = data.images[:n]
    metrics: dict[str, float] = {}
    if hasattr(model, "answer"):
        question = "Describe this person's facial expression in one sentence."
        state = {"tokens": 0}

        def chat() -> None:
            state["tokens"] = sum(model.answer(im, question)[1] for im in images[: cfg.n_queries])

        seconds = _median_time(chat, cfg.repeats)
        metrics["tokens_per_s"] = state["tokens"] / seconds
        metrics["ms_per_answer"] = 1000.0 * seconds / min(len(images), cfg.n_queries)
    else:
        seconds = _median_time(lambda: model.encode_images(images), cfg.repeats)
        metrics["images_per_s"] = n / seconds
        gallery = ctx.image_embeddings(model, data)
        k = min(10, len(gallery))
        if getattr(model, "has_text", False):
            queries = [c[0] for c in data.captions if c][: cfg.n_queries] or ["a photo of a smiling person"]
            encode = lambda q: model.encode_texts([q])  # noqa: E731
        else:
            queries = images[: cfg.n_queries]
            encode = lambda q: model.encode_images([q])  # noqa: E731

        def search() -> None:
            for q in queries:
                scores = gallery @ encode(q)[0]
                np.argpartition(-scores, k - 1)[:k]

        metrics["ms_per_query"] = 1000.0 * _median_time(search, cfg.repeats) / len(queries)
        metrics["gallery_size"] = float(len(gallery))
    return [
        TaskResult(
            TASK,
            data.name,
            next(iter(metrics)),
            metrics,
            {},
            {},
            n,
            extra={
                "repeats": cfg.repeats,
                "host": f"{platform.machine()} x{os.cpu_count()} cpus",
                "torch_threads": _torch_threads(),
            },
        )
    ]


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()
