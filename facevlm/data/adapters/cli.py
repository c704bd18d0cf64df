"""`facevlm data import SOURCE ROOT --split train --out NAME`."""

from __future__ import annotations

import json

import click

from facevlm.data.adapters import REGISTRY


def _options(pairs: tuple[str, ...]) -> dict[str, str]:
    from facevlm.errors import FacevlmError

    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise FacevlmError(f"--option {pair!r}: expected key=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = value
    return out


@click.command("import", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", type=click.Choice(sorted(REGISTRY)))
@click.argument("root", required=False)
@click.option("--split", default="train", show_default=True, help="Official split to read (train/val/test/all).")
@click.option("--out", "out", required=True, help="Dataset name (under $FACEVLM_HOME/datasets) or a path.")
@click.option("--limit", type=int, default=None, help="Read at most this many records.")
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Adapter option, e.g. -o variant=wild (celeba), -o label=expression (imagefolder).",
)
@click.option("--strict", is_flag=True, help="Stop at the first bad item instead of skipping and counting it.")
def import_cmd(
    source: str, root: str | None, split: str, out: str, limit: int | None, options: tuple[str, ...], strict: bool
) -> None:
    """Read SOURCE (a real dataset as distributed, at ROOT) into a stored face dataset.

    Bad items (corrupt images, malformed lines) are skipped with a one-line warning and counted; the
    summary is printed and saved as import_summary.json next to the dataset.
    """
    from facevlm.data.adapters import open_source
    from facevlm.data.store import dataset_path, save_records

    reader = open_source(source, root, split, limit=limit, strict=strict, **_options(options))
    path = save_records(reader, dataset_path(out))
    (path / "import_summary.json").write_text(json.dumps(reader.summary.to_dict(), indent=2))
    for line in reader.summary.lines():
        click.echo(line)
    click.echo(f"saved {reader.summary.loaded} records to {path}")
