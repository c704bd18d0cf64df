"""Contrastive fine-tuning of FaceCLIP on stored face-caption datasets (single process or torchrun DDP).

`run` is the training loop: it builds the model (a config name, or a FaceCLIP folder to continue from),
the data (clip/data.py) and the optimiser, steps with open_clip_train's `cosine_lr` schedule, logs
metrics.jsonl, checkpoints, resumes, and leaves a loadable FaceCLIP folder with a report. `train_recipe`
is the `kind: clip` entry of `facevlm finetune`. The recipe fields are train_config.py; the pieces of one
optimiser step (losses, feature-cache accumulation, learning-rate groups, frozen towers, precision, the
DDP process group) are train_step.py.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch

from facevlm import paths
from facevlm.clip import checkpoint
from facevlm.clip.train_config import FinetuneConfig
from facevlm.clip.train_step import (
    LrProxy,
    autocast_and_scaler,
    freeze_towers,
    frozen_modules,
    group_text_by_length,
    init_distributed,
    make_loss,
    mean_over_ranks,
    out_of_time,
    param_groups,
    resolve_precision,
    train_mode,
    train_step,
)
from facevlm.config import load_recipe, to_dict
from facevlm.errors import FacevlmError


def run(cfg: FinetuneConfig, *, resume: str | None = None, recipe_name: str = "clip", progress: bool = True) -> Path:
    """Train per `cfg`; returns the run folder, which is itself a loadable FaceCLIP folder at the end."""
    from open_clip_train.scheduler import cosine_lr
    from tqdm import tqdm

    from facevlm.clip import factory
    from facevlm.clip.data import CaptionPairs, EpochSampler, load_training_records, worker_init
    from facevlm.clip.inference import trim_padding
    from facevlm.clip.report import write_report

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dist = init_distributed()
    run_dir = Path(cfg.out).expanduser() if cfg.out else paths.models_dir() / recipe_name
    torch.manual_seed(cfg.seed)  # identical initial fresh projections on every rank
    if checkpoint.is_model_dir(cfg.model):
        model, train_tf, _, tokenizer, model_cfg = checkpoint.load_model(cfg.model, str(dist.device))
        model_cfg = dict(model_cfg)
        from open_clip.transform import PreprocessCfg, image_transform_v2

        train_tf = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), True, cfg.aug)
    else:
        extra = {"init_logit_scale": math.log(10), "init_logit_bias": -10.0} if cfg.loss == "siglip" else {}
        built = factory.create(
            cfg.model,
            cfg.pretrained,
            device=str(dist.device),
            pretrained_towers=cfg.pretrained_towers,
            aug_cfg=cfg.aug,
            **extra,
        )
        model, train_tf, tokenizer = built.model, built.train_transform, built.tokenizer
        model_cfg = {**factory.model_config(cfg.model), **extra}
    if cfg.loss == "siglip" and getattr(model, "logit_bias", None) is None:
        raise FacevlmError(f"{cfg.model}: loss siglip needs a model with a logit_bias")
    model.output_dict = True
    freeze_towers(model, cfg)
    frozen = frozen_modules(model, dropout=cfg.frozen_dropout)
    if cfg.text_length_groups:
        group_text_by_length(model, tokenizer)
    layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.visual.to(memory_format=layout)
    optimizer = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)
    autocast, scaler = autocast_and_scaler(cfg, dist.device)

    start = 0
    if resume:
        state = checkpoint.load_checkpoint(
            checkpoint.latest_checkpoint(resume), model=model, optimizer=optimizer, scaler=scaler
        )
        start = int(state["step"])
    if dist.world_size > 1:
        ddp_kw = {"device_ids": [dist.device]} if dist.device.type == "cuda" else {}
        model = torch.nn.parallel.DistributedDataParallel(model, **ddp_kw)

    records = load_training_records(
        cfg.data.datasets, cfg.data.splits, cfg.data.max_records, cfg.data.repeat, cfg.data.holdout
    )
    dataset = CaptionPairs(
        records, train_tf, tokenizer, seed=cfg.seed, crop_margin=cfg.data.crop_margin, name=",".join(cfg.data.datasets)
    )
    sampler = EpochSampler(
        len(dataset),
        cfg.batch_size,
        seed=cfg.seed,
        rank=dist.rank,
        world_size=dist.world_size,
        start_batch=start * cfg.accum_steps,
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.data.workers,
        worker_init_fn=worker_init(cfg.data.worker_nice),
        pin_memory=dist.device.type == "cuda",
        persistent_workers=cfg.data.workers > 0,
    )
    batches: Iterator = iter(loader)
    loss_fn = make_loss(cfg, dist)
    schedule = cosine_lr(LrProxy(), 1.0, cfg.warmup_steps, cfg.steps)

    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        import yaml

        (run_dir / "config.yaml").write_text(
            yaml.safe_dump(
                {
                    **to_dict(cfg),
                    "resolved_model_cfg": model_cfg,
                    "resolved_precision": resolve_precision(cfg, dist.device),
                    "world_size": dist.world_size,
                    "n_train_faces": len(dataset),
                },
                sort_keys=False,
            )
        )
    metrics_path = run_dir / "metrics.jsonl"
    if dist.main:
        _truncate_metrics(metrics_path, start)

    def save(step: int) -> None:
        """A resumable checkpoint of `step` (model, optimizer, scaler), keeping the newest few."""
        checkpoint.save_checkpoint(
            run_dir / "checkpoints" / f"step_{step:08d}",
            model=model,
            tokenizer=tokenizer,
            model_cfg=model_cfg,
            optimizer=optimizer,
            scaler=scaler,
            step=step,
        )
        checkpoint.prune_checkpoints(run_dir, cfg.keep_checkpoints)

    bar = tqdm(total=cfg.steps, initial=start, desc=f"finetune {recipe_name}", disable=not (progress and dist.main))
    t0, seen = time.time(), 0
    last = cfg.steps
    for step in range(start, cfg.steps):
        if step > start and cfg.time_limit_min is not None and out_of_time(t0, cfg.time_limit_min, dist):
            last = step
            bar.write(f"time limit of {cfg.time_limit_min} min reached: stopping at step {step} of {cfg.steps}")
            break
        factor = schedule(step)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        micro = []
        for _ in range(cfg.accum_steps):
            images, texts = next(batches)
            texts = trim_padding(texts, tokenizer)
            images = images.to(dist.device, non_blocking=True, memory_format=layout)
            micro.append((images, texts.to(dist.device, non_blocking=True)))
        train_mode(model, frozen)
        optimizer.zero_grad(set_to_none=True)
        loss = mean_over_ranks(train_step(model, loss_fn, micro, autocast, scaler), dist)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        inner = getattr(model, "module", model)
        with torch.no_grad():
            inner.logit_scale.clamp_(0, math.log(100))
        seen += cfg.batch_size * cfg.accum_steps * dist.world_size
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        done = step + 1
        if dist.main and (done % cfg.log_every == 0 or done == cfg.steps or done == start + 1):
            row = {
                "step": done,
                "loss": loss,
                "lr": cfg.lr * factor,
                "logit_scale": inner.logit_scale.exp().item(),
                "samples_per_s": seen / max(time.time() - t0, 1e-9),
                "elapsed_s": time.time() - t0,
            }
            with metrics_path.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
        if dist.main and (done % cfg.checkpoint_every == 0 and done < cfg.steps):
            save(done)
    bar.close()
    if dist.main:
        save(last)
        checkpoint.save_model(
            model,
            tokenizer,
            model_cfg,
            run_dir,
            meta={
                "step": last,
                "steps_planned": cfg.steps,
                "recipe": recipe_name,
                "train_seconds": time.time() - t0,
                # the crop the model learned on: galleries and eval cut faces the same way
                "crop_margin": cfg.data.crop_margin,
            },
        )
        write_report(run_dir)
    if dist.world_size > 1:
        torch.distributed.barrier()
    return run_dir


def train_recipe(
    recipe: Path, *, resume: str | None = None, out: str | None = None, steps: int | None = None, progress: bool = True
) -> Path:
    """The `kind: clip` trainer of `facevlm finetune` (facevlm.finetune.Trainer): the recipe, with the
    command-line overrides, through `run`. The run is named facevlm-clip-<recipe name without clip->."""
    try:
        cfg = load_recipe(FinetuneConfig, recipe)
    except FacevlmError as exc:  # __post_init__ messages do not name the file yet
        raise FacevlmError(str(exc) if str(recipe) in str(exc) else f"{recipe}: {exc}") from None
    overrides = {k: v for k, v in (("out", out), ("steps", steps)) if v is not None}
    cfg = replace(cfg, **overrides)  # re-validated by __post_init__
    name = Path(recipe).stem.removeprefix("clip-")
    return run(cfg, resume=resume, recipe_name=f"facevlm-clip-{name}", progress=progress)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint a resumed run restarts from (a fresh run: all rows)."""
    if not path.is_file():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [r for r in rows if json.loads(r).get("step", 0) <= step] if step else []
    path.write_text("".join(r + "\n" for r in kept))
