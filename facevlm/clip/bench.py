"""`facevlm bench clip`: image-embedding throughput of our `encode_images` vs open_clip's own forward.

Both paths run the same model object in the same process on the same preprocessed batch, so the
ratio isolates what facevlm adds (batching, normalisation, device/dtype moves, CPU copy-back) from the
network itself. Preprocessing (PIL -> tensor) is excluded from both: it is identical and measured by
nobody's model code. Output is a Markdown row for docs/benchmarks.md plus the command line.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

import click


def _best_rates(fns: dict[str, Callable[[], Any]], n_images: int, repeats: int) -> dict[str, float]:
    """images/s of each function, best of `repeats`; the functions take turns in every round so that
    load from other processes on a shared machine hits both alike."""
    for fn in fns.values():
        fn()  # warm-up: allocator, oneDNN kernel selection
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: n_images / t for name, t in best.items()}


def measure(model_ref: str, batch_size: int = 32, batches: int = 3, repeats: int = 5,
            threads: int | None = None, device: str = "cpu") -> dict[str, float]:
    """images/s of facevlm's encode_images and of open_clip's model.encode_image on identical input."""
    import torch

    from facevlm.clip.inference import encode_images
    from facevlm.clip.model import load

    if threads:
        torch.set_num_threads(threads)
    clip = load(model_ref, device=device)
    size = clip.model.visual.preprocess_cfg["size"]
    size = size if isinstance(size, (tuple, list)) else (size, size)
    gen = torch.Generator().manual_seed(0)
    pixels = torch.rand(batch_size * batches, 3, *size, generator=gen)
    n = len(pixels)

    def ours() -> Any:
        return encode_images(clip.model, clip.preprocess, list(pixels), batch_size=batch_size)

    @torch.no_grad()
    def reference() -> Any:
        clip.model.eval()
        return [clip.model.encode_image(pixels[i:i + batch_size].to(device)) for i in range(0, n, batch_size)]

    rates = _best_rates({"open_clip": reference, "ours": ours}, n, repeats)
    return {**rates, "ratio": rates["ours"] / rates["open_clip"], "threads": torch.get_num_threads()}


@click.command(name="clip", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", "model_ref", default="facevlm-clip-small", show_default=True,
              help="Model name, FaceCLIP folder, or hf-hub id.")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--batches", default=3, show_default=True, help="Batches per timed pass.")
@click.option("--repeats", default=5, show_default=True, help="Timed rounds; the best of each is kept.")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--device", default="cpu", show_default=True)
def bench_clip(model_ref: str, batch_size: int, batches: int, repeats: int, threads: int | None, device: str) -> None:
    """FaceCLIP image-embedding throughput vs open_clip's own encode_image, same model, same run."""
    r = measure(model_ref, batch_size, batches, repeats, threads, device)
    click.echo(f"<!-- {' '.join(['facevlm', 'bench', 'clip', *sys.argv[3:]])} -->")
    click.echo("| model | device | threads | batch | facevlm encode_images (img/s) | open_clip encode_image (img/s) | ratio |")
    click.echo("|---|---|---|---|---|---|---|")
    click.echo(f"| {model_ref} | {device} | {r['threads']} | {batch_size} | {r['ours']:.1f} | {r['open_clip']:.1f} "
               f"| {r['ratio']:.2f} |")
