"""`facevlm data synth`: render a synthetic face dataset and store it; print per-attribute counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

import click

from facevlm.data.synth.scene import FACTORS
from facevlm.schema import VOCABULARY, FaceRecord


def tally(records: Iterable[FaceRecord], counts: Counter) -> Iterator[FaceRecord]:
    """Pass records through while counting (attribute, value) pairs; numeric attributes are skipped."""
    for rec in records:
        for a in rec.attributes:
            if VOCABULARY[a.name].kind != "numeric":
                counts[(a.name, a.value)] += 1
        counts[("_records", "")] += 1
        yield rec


def format_counts(counts: Counter) -> str:
    """One line per attribute: categorical values with counts, binaries as true-count / total."""
    total = counts[("_records", "")]
    by_name: dict[str, dict[str, int]] = {}
    for (name, value), c in counts.items():
        if name != "_records":
            by_name.setdefault(name, {})[value] = c
    lines = [f"{total} records"]
    for name in sorted(by_name):
        vals = by_name[name]
        if VOCABULARY[name].kind == "binary":
            lines.append(f"  {name}: {vals.get('true', 0)}/{total} true")
        else:
            order = VOCABULARY[name].values
            lines.append(f"  {name}: " + ", ".join(f"{v}={vals[v]}" for v in order if v in vals))
    return "\n".join(lines)


@click.command("synth")
@click.option("--n-identities", type=click.IntRange(1), default=100, show_default=True)
@click.option(
    "--per-identity",
    type=click.IntRange(1),
    default=5,
    show_default=True,
    help="Renders per identity (in --one-factor mode: probe groups per identity).",
)
@click.option("--size", type=click.IntRange(128, 1024), default=160, show_default=True, help="Image side, pixels.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(1), default=None, help="Processes (default: all cores).")
@click.option("--out", required=True, help="Output dataset folder, or a bare name under $FACEVLM_HOME/datasets.")
@click.option(
    "--one-factor",
    type=click.Choice(sorted(FACTORS)),
    default=None,
    help="Bias-probe mode: each group varies only this factor over all its values.",
)
def synth(
    n_identities: int, per_identity: int, size: int, seed: int, workers: int | None, out: str, one_factor: str | None
) -> None:
    """Render synthetic faces with exact ground-truth labels into a stored face dataset."""
    from tqdm import tqdm

    from facevlm.data.store import dataset_path, save_records
    from facevlm.data.synth import SynthConfig, generate

    cfg = SynthConfig(n_identities, per_identity, size, seed, one_factor)
    cfg.validate()
    counts: Counter = Counter()
    records = tqdm(generate(cfg, workers, encoded=True), total=len(cfg), desc="synth", unit="img")
    path = save_records(tally(records, counts), dataset_path(out))
    click.echo(f"saved {path}")
    click.echo(format_counts(counts))
