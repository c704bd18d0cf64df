"""`facevlm bench clip`: FaceCLIP's encoders through each backend vs open_clip's own eager forward.

One process, one run: open_clip's `model.encode_image` / `encode_text` on a model loaded with the `eager`
backend is the reference; every facevlm backend (facevlm.clip.backends) runs `encode_images` /
`encode_texts` (text cache off) on a second copy of the same weights (channels_last changes the tower's
layout in place, so the reference keeps its own; a deep copy, so even random weights are the same) and on
the same inputs. The paths take turns in every timed round, so load from other processes on a shared
machine hits all alike. Image preprocessing (PIL -> tensor) is left out of every image path (identical for
all); tokenising is in every text path, the reference included (`encode_texts` takes strings; ~0.1 ms a
query). Each row gives the largest |difference| to the reference embeddings (normalised) and the smallest
cosine; "runs as" is what the backend ran after its fallbacks, if any. Text is timed on one query (the
gateway's search) and on the 64 first prompts of the expression head. The text reference runs on the
tokens facevlm feeds its own towers (padding trimmed to the batch's longest text), the strict comparison;
a second reference row is open_clip as it runs by itself, every text padded to the full context (77 for
MiniLM), and the line under each text table gives the default backend's ratio to that one too. Output:
Markdown rows for docs/benchmarks.md plus the command line.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import time
from collections.abc import Callable
from typing import Any

import click

IMAGE_BACKENDS = ("eager", "channels_last", "compile", "onnx", "bf16", "auto")
QUERY = "a smiling woman with glasses"
PADDED = "open_clip_padded"  # the text reference as open_clip runs it: padded to the full context
REFERENCES = ("open_clip", PADDED)  # rows timed on the eager reference model, not through a backend


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


def _rows(
    fns: dict[str, Callable[[], Any]], repeats: int, count: int, runs_as: Callable[[str], str]
) -> dict[str, dict[str, Any]]:
    """Per path: items/s, ms per call, ratio to "open_clip", max |Δ| and min cosine of the normalised
    outputs against it, and the first (untimed) call's seconds: compile or export."""
    import torch.nn.functional as F

    first = {}
    for name, fn in fns.items():  # first calls: compile / export cost, outside the timed rounds
        start = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - start
    seconds = _best_seconds(fns, repeats)
    want = F.normalize(fns["open_clip"]().float(), dim=-1).cpu()
    rows = {}
    for name, fn in fns.items():
        got = F.normalize(fn().float(), dim=-1).cpu()
        rows[name] = {
            "per_s": count / seconds[name],
            "ms": seconds[name] * 1e3,
            "ratio": seconds["open_clip"] / seconds[name],
            "max_abs": float((got - want).abs().max()),
            "min_cos": float((got * want).sum(-1).min()),
            "first_s": 0.0 if name in REFERENCES else first[name],
            "runs_as": "eager" if name in REFERENCES else runs_as(name),
        }
    return rows


def measure(
    model_ref: str,
    batch_size: int = 32,
    batches: int = 3,
    repeats: int = 5,
    threads: int | None = None,
    device: str = "cpu",
    backends: tuple[str, ...] = IMAGE_BACKENDS,
) -> dict[str, Any]:
    """Image rows (images/s), text rows (one query; 64 prompts) and the text-cache hit, per backend."""
    import torch

    from facevlm.clip.backends import TextCache, image_runner, text_runner
    from facevlm.clip.inference import trim_padding
    from facevlm.clip.model import load
    from facevlm.clip.prompts import attribute_prompts

    if threads:
        torch.set_num_threads(threads)
    ref = load(model_ref, device=device, backend="eager", text_cache=TextCache(0))
    fast = dataclasses.replace(ref, model=copy.deepcopy(ref.model))  # the same weights, even when untrained
    size = ref.model.visual.preprocess_cfg["size"]
    size = size if isinstance(size, (tuple, list)) else (size, size)
    pixels = torch.rand(batch_size * batches, 3, *size, generator=torch.Generator().manual_seed(0))
    n = len(pixels)

    def clip_of(backend: str) -> Any:  # facevlm's eager path runs on the untouched copy; the others share one
        return ref if backend == "eager" else dataclasses.replace(fast, backend=backend)

    @torch.no_grad()
    def open_clip_images() -> torch.Tensor:
        ref.model.eval()
        return torch.cat(
            [ref.model.encode_image(pixels[i : i + batch_size].to(device)) for i in range(0, n, batch_size)]
        )

    def images(backend: str) -> Callable[[], torch.Tensor]:
        clip = clip_of(backend)
        return lambda: clip.encode_images(list(pixels), batch_size=batch_size)

    image_fns = {"open_clip": open_clip_images, **{b: images(b) for b in backends}}
    image_rows = _rows(image_fns, repeats, n, lambda b: image_runner(clip_of(b).model, b).backend)

    head = attribute_prompts("expression").values()  # the prompts of one zero-shot head, in build order
    prompts = list(dict.fromkeys(p for pos, states in head for p in pos + sum(states, [])))[:64]
    text: dict[str, Any] = {}
    for label, texts, rounds in (("one query", [QUERY], repeats * 4), (f"{len(prompts)} prompts", prompts, repeats)):

        @torch.no_grad()
        def open_clip_text(texts: list[str] = texts) -> torch.Tensor:
            return ref.model.encode_text(trim_padding(ref.tokenizer(texts), ref.tokenizer).to(device))

        @torch.no_grad()
        def open_clip_padded(texts: list[str] = texts) -> torch.Tensor:
            return ref.model.encode_text(ref.tokenizer(texts).to(device))

        def encode(backend: str, texts: list[str] = texts) -> Callable[[], torch.Tensor]:
            clip = clip_of(backend)
            return lambda: clip.encode_texts(texts)

        text_fns = {"open_clip": open_clip_text, PADDED: open_clip_padded, **{b: encode(b) for b in backends}}
        text[label] = _rows(text_fns, rounds, len(texts), lambda b: text_runner(clip_of(b).model, b).backend)
    cached = dataclasses.replace(fast, backend="auto", text_cache=TextCache())
    hit = _best_seconds({"hit": lambda: cached.encode_texts([QUERY])}, repeats * 4)["hit"]
    return {"rows": image_rows, "text": text, "hit_ms": hit * 1e3, "threads": torch.get_num_threads(), "n": n}


def _table(rows: dict[str, dict[str, Any]], head: str, unit: str, reference: str, ours: str) -> list[str]:
    lines = [
        f"| {head} | runs as | {unit} | ms per call | ratio vs open_clip | max abs Δ | min cosine | first call (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        label = {"open_clip": reference, PADDED: f"{reference}, padded to the context"}.get(name, f"{ours}, {name}")
        lines.append(
            f"| {label} | {row['runs_as']} | {row['per_s']:.1f} | {row['ms']:.2f} | {row['ratio']:.2f} "
            f"| {row['max_abs']:.1e} | {row['min_cos']:.6f} | {row['first_s']:.1f} |"
        )
    return lines


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
@click.option("--threads", type=int, default=None, help="torch (and ONNX Runtime) CPU threads (default: torch's).")
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
    lines = _table(r["rows"], "image path", "img/s", "open_clip encode_image (eager)", "facevlm encode_images")
    for label, rows in r["text"].items():
        table = _table(rows, f"text, {label}", "texts/s", "open_clip encode_text (eager)", "facevlm encode_texts")
        lines += ["", *table]
        if "auto" in rows:
            padded = rows[PADDED]["ms"] / rows["auto"]["ms"]
            lines.append(f"\nauto vs open_clip padded to its context ({rows[PADDED]['ms']:.2f} ms): {padded:.2f}x")
    lines += ["", f"text cache hit (one query, auto): {r['hit_ms']:.3f} ms"]
    click.echo("\n".join(lines))
