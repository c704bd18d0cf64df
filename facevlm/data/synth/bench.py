"""`facevlm bench synth`: renderer throughput, parallel against the single-process reference."""

from __future__ import annotations

import os
import time

import click


@click.command("synth")
@click.option("--n", "n_images", type=click.IntRange(8), default=400, show_default=True, help="Images per run.")
@click.option("--size", type=click.IntRange(128, 1024), default=160, show_default=True)
@click.option("--workers", type=click.IntRange(1), default=None, help="Processes (default: all cores).")
@click.option("--seed", type=int, default=0, show_default=True)
def bench_synth(n_images: int, size: int, workers: int | None, seed: int) -> None:
    """Images/s of `generate` (render + labels + PIL conversion, no saving), serial and parallel."""
    from facevlm.data.synth import SynthConfig, generate

    workers = workers or os.cpu_count() or 1
    per = 5
    cfg = SynthConfig(n_identities=max(1, n_images // per), per_identity=per, size=size, seed=seed)
    n = len(cfg)
    click.echo(f"command: facevlm bench synth --n {n_images} --size {size} --workers {workers} --seed {seed}")
    click.echo(f"{os.cpu_count()} cores visible; {n} images of {size}x{size}")
    click.echo("| renderer | workers | images | seconds | images/s |")
    click.echo("|---|---|---|---|---|")
    for w in sorted({1, workers}):
        start = time.perf_counter()
        count = sum(1 for _ in generate(cfg, workers=w))
        secs = time.perf_counter() - start
        click.echo(f"| facevlm synth {size}px | {w} | {count} | {secs:.2f} | {count / secs:.1f} |")
