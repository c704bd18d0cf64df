"""`facevlm finetune RECIPE`: train FaceCLIP from a finetune/*.yaml recipe (also under torchrun)."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command(name="finetune", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--resume", type=click.Path(path_type=Path), default=None,
              help="A run folder (newest checkpoint is used) or one checkpoints/step_* folder.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Run folder (default: the recipe's `out`, else $FACEVLM_HOME/models/<recipe name>).")
@click.option("--steps", type=int, default=None, help="Override the recipe's number of optimiser steps.")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs only).")
def finetune(recipe: Path, resume: Path | None, out: Path | None, steps: int | None, no_progress: bool) -> None:
    """Fine-tune FaceCLIP (contrastive, open_clip losses) per RECIPE; multi-GPU with
    `torchrun --nproc_per_node N -m facevlm.cli finetune RECIPE`. The run folder ends up as an
    open_clip-loadable model folder with config.yaml, metrics.jsonl/json and loss_curve.png."""
    from facevlm.clip.train import FinetuneConfig, run
    from facevlm.config import load_recipe

    from facevlm.errors import FacevlmError

    try:
        cfg = load_recipe(FinetuneConfig, recipe)
    except FacevlmError as exc:
        raise FacevlmError(str(exc) if str(recipe) in str(exc) else f"{recipe}: {exc}") from None
    if out is not None:
        cfg.out = str(out)
    if steps is not None:
        cfg.steps = steps
    name = recipe.stem.removeprefix("clip-")
    run_dir = run(cfg, resume=str(resume) if resume else None, recipe_name=f"facevlm-clip-{name}",
                  progress=not no_progress)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one line, not one per rank
        click.echo(f"model folder: {run_dir}")
