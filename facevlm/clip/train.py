"""Contrastive fine-tuning of FaceCLIP on stored face-caption datasets (single process or torchrun DDP).

The losses are open_clip's own (`ClipLoss`, `SigLipLoss`) with their cross-rank feature gathering, the
learning-rate schedule is open_clip_train's `cosine_lr`, and gradient accumulation uses open_clip_train's
feature-cache scheme (features of all micro-batches are computed without grad first, then each
micro-batch is recomputed with grad against the cached rest), so accumulating k micro-batches gives the
same negatives and gradients as one k-times larger batch.

Pretrained towers get `tower_lr_scale` x the learning rate of the fresh projections, and can be frozen
but for their last blocks (`image_unlocked_groups`, `text_unlocked_layers`): on two CPU cores that is
what lets a 10-minute run move the projections far without wrecking the towers.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from facevlm import paths
from facevlm.clip import checkpoint
from facevlm.config import load_recipe, to_dict
from facevlm.errors import FacevlmError


@dataclass
class DataConfig:
    datasets: list[str] = field(default_factory=lambda: ["synthetic"])  # names under $FACEVLM_HOME/datasets or paths
    splits: list[str] = field(default_factory=lambda: ["train"])
    crop_margin: float = 0.2
    max_records: int | None = None
    workers: int = 0


@dataclass
class FinetuneConfig:
    """One finetune/*.yaml recipe with `kind: clip` (the key `facevlm finetune` dispatches on)."""

    kind: Literal["clip"] = "clip"
    model: str = "facevlm-clip-small"  # a config name, or a FaceCLIP folder to continue from
    pretrained: str | None = None  # open_clip tag or weights file (stock open_clip names)
    pretrained_towers: bool = True  # start our configs from the asset towers (False: from scratch)
    out: str = ""  # run folder; default $FACEVLM_HOME/models/<recipe name>
    data: DataConfig = field(default_factory=DataConfig)
    loss: Literal["clip", "siglip"] = "clip"
    steps: int = 300
    batch_size: int = 64  # per rank, per micro-batch
    accum_steps: int = 1
    lr: float = 1e-3  # fresh parameters (projections, logit scale)
    tower_lr_scale: float = 0.1  # pretrained towers train at lr * this
    weight_decay: float = 0.1
    warmup_steps: int = 20
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-6
    image_unlocked_groups: int | None = None  # None: whole image tower trains; 0: frozen; n: last n groups
    text_unlocked_layers: int | None = None  # None: whole text tower trains; 0: frozen; n: last n layers
    precision: Literal["auto", "fp32", "bf16", "amp"] = "auto"  # auto: bf16 autocast on GPU, fp32 on CPU
    aug: dict[str, Any] = field(
        default_factory=lambda: {
            "scale": [0.8, 1.0],
            "color_jitter": [0.3, 0.3, 0.2, 0.05],
            "color_jitter_prob": 0.5,
            "gray_scale_prob": 0.1,
        }
    )
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 0
    threads: int | None = None  # torch CPU threads (None: torch's default)
    time_limit_min: float | None = None  # stop (and save) early when a step ends past this wall time

    def __post_init__(self) -> None:
        checks = [
            ("kind", self.kind == "clip", "clip"),
            ("loss", self.loss in ("clip", "siglip"), "clip or siglip"),
            ("precision", self.precision in ("auto", "fp32", "bf16", "amp"), "auto, fp32, bf16 or amp"),
            ("steps", isinstance(self.steps, int) and self.steps > 0, "a positive integer"),
            ("batch_size", isinstance(self.batch_size, int) and self.batch_size > 1, "an integer > 1"),
            ("accum_steps", isinstance(self.accum_steps, int) and self.accum_steps > 0, "a positive integer"),
            ("lr", isinstance(self.lr, (int, float)) and self.lr > 0, "a positive number"),
            (
                "checkpoint_every",
                isinstance(self.checkpoint_every, int) and self.checkpoint_every > 0,
                "a positive integer",
            ),
            ("data.datasets", bool(self.data.datasets), "a non-empty list"),
        ]
        for name, ok, what in checks:
            if not ok:
                raise FacevlmError(f"{name}: must be {what}")


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; NCCL on GPUs, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    rank = torch.distributed.get_rank() if world > 1 else 0
    return Dist(rank, world, local, device)


def _freeze(model: Any, cfg: FinetuneConfig) -> None:
    if cfg.image_unlocked_groups is not None:
        model.lock_image_tower(unlocked_groups=cfg.image_unlocked_groups)
    if cfg.text_unlocked_layers is not None:
        if hasattr(model, "lock_text_tower"):
            from open_clip.hf_configs import arch_dict

            # open_clip 3.3's BERT entry lacks the names its HF `lock` needs (MiniLM is a BERT)
            arch_dict["bert"]["config_names"].setdefault("layer_attr", "layer")
            arch_dict["bert"]["config_names"].setdefault("token_embeddings_attr", "embeddings")
            model.lock_text_tower(unlocked_layers=cfg.text_unlocked_layers, freeze_layer_norm=True)
        else:
            raise FacevlmError(f"{cfg.model}: text_unlocked_layers needs a custom/HF text tower")


def _train_mode(model: Any) -> None:
    """train(), but BatchNorm layers whose parameters are frozen keep their ImageNet statistics."""
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            if not any(p.requires_grad for p in module.parameters(recurse=False)):
                module.eval()


def param_groups(model: Any, cfg: FinetuneConfig) -> list[dict[str, Any]]:
    """AdamW groups: towers vs fresh heads (learning rate), and open_clip_train's no-decay rule
    (gains, biases, norms and the logit scale are not decayed)."""
    towers = ("visual.trunk.", "text.transformer.")  # what factory.create loads from assets
    from_assets = cfg.pretrained_towers and cfg.pretrained is None and not checkpoint.is_model_dir(cfg.model)
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_tower = from_assets and name.startswith(towers)
        no_decay = p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
        groups.setdefault((is_tower, no_decay), []).append(p)
    return [
        {
            "params": ps,
            "base_lr": cfg.lr * (cfg.tower_lr_scale if tower else 1.0),
            "weight_decay": 0.0 if no_decay else cfg.weight_decay,
        }
        for (tower, no_decay), ps in groups.items()
    ]


class _LrProxy:
    """open_clip_train's cosine_lr assigns one lr to every group; give it this and scale per group."""

    def __init__(self) -> None:
        self.param_groups = [{"lr": 0.0}]


def _precision(cfg: FinetuneConfig, device: torch.device) -> tuple[Any, Any]:
    """(autocast context factory, GradScaler or None)."""
    mode = cfg.precision
    if mode == "auto":
        mode = "bf16" if device.type == "cuda" else "fp32"
    if mode == "fp32":
        return contextlib.nullcontext, None
    if mode == "bf16":
        return (lambda: torch.autocast(device.type, dtype=torch.bfloat16)), None
    if device.type != "cuda":
        raise FacevlmError("precision: amp (fp16 + GradScaler) needs a GPU; use fp32 or bf16 on CPU")
    return (lambda: torch.autocast("cuda", dtype=torch.float16)), torch.amp.GradScaler("cuda")


def _make_loss(cfg: FinetuneConfig, dist: Dist) -> Any:
    from open_clip.loss import ClipLoss, SigLipLoss

    if cfg.loss == "siglip":
        return SigLipLoss(rank=dist.rank, world_size=dist.world_size)
    return ClipLoss(
        local_loss=dist.world_size > 1,
        gather_with_grad=dist.world_size > 1,
        cache_labels=True,
        rank=dist.rank,
        world_size=dist.world_size,
    )


def _loss_of(loss_fn: Any, out: dict[str, torch.Tensor], img: torch.Tensor, txt: torch.Tensor) -> torch.Tensor:
    if "logit_bias" in out:
        return loss_fn(img, txt, out["logit_scale"], out["logit_bias"])
    return loss_fn(img, txt, out["logit_scale"])


def train_step(
    model: Any, loss_fn: Any, micro: list[tuple[torch.Tensor, torch.Tensor]], autocast: Any, scaler: Any
) -> float:
    """Forward/backward of one optimiser step over `micro` batches (feature-cache accumulation)."""
    if len(micro) == 1:
        images, texts = micro[0]
        with autocast():
            out = model(images, texts)
            loss = _loss_of(loss_fn, out, out["image_features"], out["text_features"])
        (scaler.scale(loss) if scaler else loss).backward()
        return float(loss.detach())
    with torch.no_grad(), autocast():
        cached = [model(images, texts) for images, texts in micro]
    total = 0.0
    for j, (images, texts) in enumerate(micro):
        sync = model.no_sync if hasattr(model, "no_sync") and j < len(micro) - 1 else contextlib.nullcontext
        with sync(), autocast():
            out = model(images, texts)
            img = torch.cat([c["image_features"] if i != j else out["image_features"] for i, c in enumerate(cached)])
            txt = torch.cat([c["text_features"] if i != j else out["text_features"] for i, c in enumerate(cached)])
            loss = _loss_of(loss_fn, out, img, txt)
        (scaler.scale(loss) if scaler else loss).backward()
        total = float(loss.detach())  # every micro-batch sees the same full-batch loss value
    return total


def run(cfg: FinetuneConfig, *, resume: str | None = None, recipe_name: str = "clip", progress: bool = True) -> Path:
    """Train per `cfg`; returns the run folder, which is itself a loadable FaceCLIP folder at the end."""
    from open_clip_train.scheduler import cosine_lr
    from tqdm import tqdm

    from facevlm.clip import factory
    from facevlm.clip.data import CaptionPairs, EpochSampler, load_training_records
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
    _freeze(model, cfg)
    optimizer = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)
    autocast, scaler = _precision(cfg, dist.device)

    start = 0
    if resume:
        state = checkpoint.load_checkpoint(
            checkpoint.latest_checkpoint(resume), model=model, optimizer=optimizer, scaler=scaler
        )
        start = int(state["step"])
    if dist.world_size > 1:
        ddp_kw = {"device_ids": [dist.device]} if dist.device.type == "cuda" else {}
        model = torch.nn.parallel.DistributedDataParallel(model, **ddp_kw)

    records = load_training_records(cfg.data.datasets, cfg.data.splits, cfg.data.max_records)
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
        pin_memory=dist.device.type == "cuda",
        persistent_workers=cfg.data.workers > 0,
    )
    batches: Iterator = iter(loader)
    loss_fn = _make_loss(cfg, dist)
    schedule = cosine_lr(_LrProxy(), 1.0, cfg.warmup_steps, cfg.steps)

    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        import yaml

        (run_dir / "config.yaml").write_text(
            yaml.safe_dump(
                {
                    **to_dict(cfg),
                    "resolved_model_cfg": model_cfg,
                    "world_size": dist.world_size,
                    "n_train_faces": len(dataset),
                },
                sort_keys=False,
            )
        )
    metrics_path = run_dir / "metrics.jsonl"
    if dist.main:
        _truncate_metrics(metrics_path, start)
    bar = tqdm(total=cfg.steps, initial=start, desc=f"finetune {recipe_name}", disable=not (progress and dist.main))
    t0, seen = time.time(), 0
    last = cfg.steps
    for step in range(start, cfg.steps):
        if step > start and cfg.time_limit_min is not None and _out_of_time(t0, cfg.time_limit_min, dist):
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
            micro.append((images.to(dist.device, non_blocking=True), texts.to(dist.device, non_blocking=True)))
        _train_mode(model)
        optimizer.zero_grad(set_to_none=True)
        loss = _mean_over_ranks(train_step(model, loss_fn, micro, autocast, scaler), dist)
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
            checkpoint.save_checkpoint(
                run_dir / "checkpoints" / f"step_{done:08d}",
                model=model,
                tokenizer=tokenizer,
                model_cfg=model_cfg,
                optimizer=optimizer,
                scaler=scaler,
                step=done,
            )
            checkpoint.prune_checkpoints(run_dir, cfg.keep_checkpoints)
    bar.close()
    if dist.main:
        checkpoint.save_checkpoint(
            run_dir / "checkpoints" / f"step_{last:08d}",
            model=model,
            tokenizer=tokenizer,
            model_cfg=model_cfg,
            optimizer=optimizer,
            scaler=scaler,
            step=last,
        )
        checkpoint.prune_checkpoints(run_dir, cfg.keep_checkpoints)
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


def _mean_over_ranks(loss: float, dist: Dist) -> float:
    """The loss of the global batch: with open_clip's local_loss each rank scores only its own rows
    against every column, so the ranks' mean is what one process with the whole batch would log."""
    if dist.world_size == 1:
        return loss
    t = torch.tensor([loss], dtype=torch.float64, device=dist.device)
    torch.distributed.all_reduce(t)
    return float(t.item()) / dist.world_size


def _out_of_time(t0: float, limit_min: float, dist: Dist) -> bool:
    """Rank 0's clock decides for everyone, so all DDP ranks stop at the same step."""
    flag = torch.tensor([float(time.time() - t0 > 60 * limit_min)], device=dist.device)
    if dist.world_size > 1:
        torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint a resumed run restarts from (a fresh run: all rows)."""
    if not path.is_file():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [r for r in rows if json.loads(r).get("step", 0) <= step] if step else []
    path.write_text("".join(r + "\n" for r in kept))
