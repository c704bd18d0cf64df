"""`facevlm finetune RECIPE`: train the model family that the recipe's `kind:` names.

A finetune recipe states what it trains (`kind: clip` for FaceCLIP, `kind: vlm` for FaceVLM's stages);
this command only maps the kind to that family's trainer and hands it the options every trainer shares,
so a second model family adds one line to `TRAINERS` instead of a second command. Trainers are imported
on first use from a "module:function" string: the command stays cheap to list and sits at the top layer,
above every stage it may start.

A recipe without `kind:` is an error rather than defaulting to FaceCLIP, so that once a second family
exists no recipe can silently train the wrong one. Under torchrun every rank runs this command; only
rank 0 prints.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Protocol

import click

from facevlm.config import read_yaml
from facevlm.errors import FacevlmError
from facevlm.lazycli import HELP_OPTIONS

# kind -> "module:function" of its Trainer.
TRAINERS: dict[str, str] = {
    "clip": "facevlm.clip.train:train_recipe",
    "vlm": "facevlm.vlm.train:train_recipe",
}


class Trainer(Protocol):
    """What a kind's trainer is called with; returns the run folder (a loadable model folder)."""

    def __call__(
        self, recipe: Path, *, resume: str | None, out: str | None, steps: int | None, progress: bool
    ) -> Path: ...


def recipe_kind(recipe: Path) -> str:
    """The recipe's `kind:`, checked against the known kinds; FacevlmError (one line) otherwise."""
    kind = read_yaml(recipe).get("kind")
    known = ", ".join(TRAINERS)
    if kind is None:
        raise FacevlmError(f"{recipe}: no `kind:` (what the recipe trains); known kinds: {known}")
    if not isinstance(kind, str) or kind not in TRAINERS:
        raise FacevlmError(f"{recipe}: unknown kind {kind!r}; known kinds: {known}")
    return kind


def trainer(kind: str) -> Trainer:
    """Import the trainer registered for `kind` (a KeyError for an unregistered kind is a bug)."""
    module_name, attr = TRAINERS[kind].split(":")
    return getattr(importlib.import_module(module_name), attr)


@click.command(name="finetune", context_settings=HELP_OPTIONS)
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    default=None,
    help="A run folder (newest checkpoint is used) or one checkpoints/step_* folder.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Run folder (default: the recipe's `out`, else $FACEVLM_HOME/models/<recipe name>).",
)
@click.option("--steps", type=int, default=None, help="Override the recipe's number of optimiser steps.")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs only).")
def finetune(recipe: Path, resume: Path | None, out: Path | None, steps: int | None, no_progress: bool) -> None:
    """Train the model RECIPE (a finetune/*.yaml) describes; its `kind:` picks the trainer (clip: FaceCLIP,
    contrastive with open_clip's losses; vlm: a FaceVLM stage, connector alignment or LoRA instruction tuning).
    Multi-GPU: `torchrun --nproc_per_node N -m facevlm.cli finetune RECIPE`. The run folder ends up as a
    loadable model folder with its recipe and metrics."""
    train = trainer(recipe_kind(recipe))
    run_dir = train(
        recipe,
        resume=str(resume) if resume else None,
        out=str(out) if out else None,
        steps=steps,
        progress=not no_progress,
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one line, not one per rank
        click.echo(f"model folder: {run_dir}")
