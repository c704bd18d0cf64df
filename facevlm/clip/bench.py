"""`facevlm bench clip`: FaceCLIP's encoders through each backend vs open_clip's own eager forward.

One process, one run: open_clip's `model.encode_image` on a model loaded with the `eager` backend is the
reference; every facevlm backend (facevlm.clip.backends) runs `encode_images` on a second copy of the same
weights (channels_last changes the tower's layout in place, so the reference keeps its own copy) and on
the same preprocessed batches. The paths take turns in every timed round, so load from other processes
on a shared machine hits all alike. Preprocessing (PIL -> tensor) is excluded: it is identical for all.
Each row also gives the largest |difference| to the reference embeddings (normalised) and the smallest
cosine. The text rows compare open_clip's `encode_text` of one query with FaceCLIP's `encode_texts` on a
miss and on a hit of the text cache. Output: Markdown rows for docs/benchmarks.md plus the command line.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from typing import Any

import click

IMAGE_BACKENDS = ("eager", "channels_last", "compile", "auto")


def _best_seconds(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Best wall time of each function over `repeats` rounds in which they take turns (after a warm-up)."""
    for fn in fns.values():
        fn()  # warm-up: allocator, oneDNN kernel selection, compilation
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def measure(
    model_ref: str,
    batch_size: int = 32,
    batches: int = 3,
    repeats: int = 5,
    threads: int | None = None,
    device: str = "cpu",
    backends: tuple[str, ...] = IMAGE_BACKENDS,
) -> dict[str, Any]:
    """images/s, ratio to open_clip's eager forward, max |Δ| and min cosine of every image backend, the
    compile (first call) seconds, and the text-query timings."""
    import torch
    import torch.nn.functional as F

    from facevlm.clip.backends import TextCache, resolve
    from facevlm.clip.model import load

    if threads:
        torch.set_num_threads(threads)
    ref = load(model_ref, device=device, backend="eager")
    fast = load(model_ref, device=device, backend="eager", text_cache=TextCache())
    size = ref.model.visual.preprocess_cfg["size"]
    size = size if isinstance(size, (tuple, list)) else (size, size)
    pixels = torch.rand(batch_size * batches, 3, *size, generator=torch.Generator().manual_seed(0))
    n = len(pixels)

    @torch.no_grad()
    def reference() -> torch.Tensor:
        ref.model.eval()
        return torch.cat(
            [ref.model.encode_image(pixels[i : i + batch_size].to(device)) for i in range(0, n, batch_size)]
        )

    def ours(backend: str) -> Callable[[], torch.Tensor]:
        # facevlm's eager path runs on the untouched copy; the others share the converted one
        clip = ref if backend == "eager" else dataclasses.replace(fast, backend=backend)
        return lambda: clip.encode_images(list(pixels), batch_size=batch_size)

    compile_s: dict[str, float] = {}
    for b in backends:  # first calls: compile cost, outside the timed rounds
        start = time.perf_counter()
        ours(b)()
        compile_s[b] = time.perf_counter() - start
    fns = {"open_clip": reference, **{b: ours(b) for b in backends}}
    seconds = _best_seconds(fns, repeats)
    want = F.normalize(reference().float(), dim=-1).cpu()
    rows = {}
    for name, fn in fns.items():
        got = fn() if name != "open_clip" else want
        rows[name] = {
            "img_s": n / seconds[name],
            "ratio": seconds["open_clip"] / seconds[name],
            "max_abs": float((got - want).abs().max()),
            "min_cos": float((got * want).sum(-1).min()),
            "first_s": compile_s.get(name, 0.0),
            "runs_as": resolve(name, fast.device) if name != "open_clip" else "eager",
        }
    return {"rows": rows, "threads": torch.get_num_threads(), "n": n, "text": _text_times(ref, fast, repeats)}


def _text_times(ref: Any, fast: Any, repeats: int) -> dict[str, float]:
    """ms per one-query encode: open_clip's encode_text, FaceCLIP on a cache miss, on a cache hit."""
    import torch

    from facevlm.clip.backends import TextCache
    from facevlm.clip.inference import trim_padding

    query = "a smiling woman with glasses"
    uncached = dataclasses.replace(fast, text_cache=TextCache(0))

    @torch.no_grad()
    def open_clip_text() -> Any:
        return ref.model.encode_text(trim_padding(ref.tokenizer([query]), ref.tokenizer))

    def miss() -> Any:
        return uncached.encode_texts([query])

    def hit() -> Any:
        return fast.encode_texts([query])

    best = _best_seconds({"open_clip": open_clip_text, "miss": miss, "hit": hit}, repeats * 4)
    return {k: v * 1e3 for k, v in best.items()}


@click.command(name="clip", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--model",
    "model_ref",
    default="facevlm-clip-small",
    show_default=True,
    help="Model name, FaceCLIP folder, or hf-hub id.",
)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--batches", default=3, show_default=True, help="Batches per timed pass.")
@click.option("--repeats", default=5, show_default=True, help="Timed rounds; the best of each is kept.")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--backends", "names", default=",".join(IMAGE_BACKENDS), show_default=True, help="Backends to time.")
def bench_clip(
    model_ref: str, batch_size: int, batches: int, repeats: int, threads: int | None, device: str, names: str
) -> None:
    """FaceCLIP embedding throughput per backend vs open_clip's own eager forward, same weights, same run."""
    from facevlm.clip.backends import check_backend

    chosen = tuple(check_backend(b.strip()) for b in names.split(",") if b.strip())
    r = measure(model_ref, batch_size, batches, repeats, threads, device, chosen)
    click.echo(f"<!-- {' '.join(['facevlm', 'bench', 'clip', *sys.argv[3:]])} -->")
    click.echo(f"{model_ref}, {device}, {r['threads']} thread(s), batch {batch_size}, {r['n']} images per pass\n")
    click.echo("| image path | runs as | img/s | ratio vs open_clip | max abs Δ | min cosine | first call (s) |")
    click.echo("|---|---|---|---|---|---|---|")
    for name, row in r["rows"].items():
        label = "open_clip encode_image (eager)" if name == "open_clip" else f"facevlm encode_images, {name}"
        click.echo(
            f"| {label} | {row['runs_as']} | {row['img_s']:.1f} | {row['ratio']:.2f} | {row['max_abs']:.1e} "
            f"| {row['min_cos']:.6f} | {row['first_s']:.1f} |"
        )
    t = r["text"]
    click.echo("\n| one text query | ms |\n|---|---|")
    click.echo(f"| open_clip encode_text | {t['open_clip']:.2f} |")
    click.echo(f"| facevlm encode_texts, cache miss | {t['miss']:.2f} |")
    click.echo(f"| facevlm encode_texts, cache hit | {t['hit']:.3f} |")
