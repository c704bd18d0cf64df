"""The pieces of one FaceCLIP optimiser step, as train.py's loop uses them.

The losses are open_clip's own (`ClipLoss`, `SigLipLoss`) with their cross-rank feature gathering, and
gradient accumulation uses open_clip_train's feature-cache scheme (features of all micro-batches are
computed without grad first, then each micro-batch is recomputed with grad against the cached rest), so
accumulating k micro-batches gives the same negatives and gradients as one k-times larger batch.

Pretrained towers get `tower_lr_scale` x the learning rate of the fresh projections (`param_groups`), and
can be frozen but for their last blocks (`freeze_towers`): on two CPU cores that is what lets a 10-minute
run move the projections far without wrecking the towers. Also here: the torchrun process group (`Dist`)
and the collectives that keep ranks in step, and the precision mode. Kept apart from the loop so that
each piece can be read and tested on its own, without the data, checkpoint and logging plumbing.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from facevlm.clip import checkpoint
from facevlm.clip.train_config import FinetuneConfig
from facevlm.errors import FacevlmError
from facevlm.hardware import bf16_faster


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


def freeze_towers(model: Any, cfg: FinetuneConfig) -> None:
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


def frozen_modules(model: Any, *, dropout: bool = False) -> list[torch.nn.Module]:
    """The modules `train_mode` keeps in eval mode: BatchNorm layers whose parameters are frozen (they keep
    their ImageNet statistics) and, unless `dropout`, every outermost module whose parameters are all frozen
    (a locked tower's lower layers then run as at inference, without dropout).

    Why the second: `lock_text_tower` freezes MiniLM's first layers but leaves them in train mode, so each
    step drew dropout masks over features nothing learns from. Those draws were ~28% of the text tower's
    forward under bf16 on CPU (docs/benchmarks.md); a locked tower in eval mode is also what LiT-style
    training means by "locked". Computed once: the frozen set does not change during a run."""
    kept: list[torch.nn.Module] = []
    inside: set[str] = set()
    for name, module in model.named_modules():
        if any(name.startswith(p + ".") for p in inside):
            continue
        params = list(module.parameters())
        if not dropout and params and not any(p.requires_grad for p in params) and name:
            kept.append(module)
            inside.add(name)
        elif isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            if not any(p.requires_grad for p in module.parameters(recurse=False)):
                kept.append(module)
    return kept


def train_mode(model: Any, frozen: list[torch.nn.Module]) -> None:
    """train(), but the `frozen_modules` run in eval mode."""
    model.train()
    for module in frozen:
        module.eval()


def group_text_by_length(model: Any, tokenizer: Any) -> bool:
    """Make an HF text tower run each batch in groups of captions of similar length; False if it cannot.

    A batch pads every caption to its longest one, and the tower computes over that padding before the mean
    pooler drops it: on the default mix (captions of 8-54 tokens, 28 on average) a third of the text tower's
    token forwards were padding, and the text tower was most of a training step on CPU. Each group
    (`inference.length_batches`, the rule the inference path uses) is trimmed to its own longest caption and
    the rows are put back in the batch's order, so the features, the negatives and the loss are those of the
    whole batch; only the order of float sums and the dropout draws differ. Patched on the instance, so the
    saved state dict and `model(images, texts)` (and DDP's hooks around it) are untouched."""
    from facevlm.clip.inference import length_batches, pad_id, trim_padding

    text, pad = getattr(model, "text", None), pad_id(tokenizer)
    if pad is None or text is None or getattr(text, "output_tokens", False):
        return False  # open_clip's own text transformer: a fixed context, nothing to trim
    whole = text.forward

    def forward(tokens: torch.Tensor) -> torch.Tensor:
        groups = length_batches((tokens != pad).sum(1).tolist(), len(tokens))
        if len(groups) == 1:
            return whole(trim_padding(tokens, tokenizer))
        rows = torch.tensor([i for g in groups for i in g], device=tokens.device)
        parts = [whole(trim_padding(tokens[g], tokenizer)) for g in groups]
        return torch.cat(parts).index_select(0, torch.argsort(rows))  # back to the batch's order

    text.forward = forward
    return True


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


class LrProxy:
    """open_clip_train's cosine_lr assigns one lr to every group; give it this and scale per group."""

    def __init__(self) -> None:
        self.param_groups = [{"lr": 0.0}]


def resolve_precision(cfg: FinetuneConfig, device: torch.device) -> str:
    """The precision a run uses: `cfg.precision`, with auto decided by `hardware.bf16_faster`."""
    if cfg.precision == "auto":
        return "bf16" if bf16_faster(device.type) else "fp32"
    return cfg.precision


def autocast_and_scaler(cfg: FinetuneConfig, device: torch.device) -> tuple[Any, Any]:
    """(autocast context factory, GradScaler or None)."""
    mode = resolve_precision(cfg, device)
    if mode == "fp32":
        return contextlib.nullcontext, None
    if mode == "bf16":
        return (lambda: torch.autocast(device.type, dtype=torch.bfloat16)), None
    if device.type != "cuda":
        raise FacevlmError("precision: amp (fp16 + GradScaler) needs a GPU; use fp32 or bf16 on CPU")
    return (lambda: torch.autocast("cuda", dtype=torch.float16)), torch.amp.GradScaler("cuda")


def make_loss(cfg: FinetuneConfig, dist: Dist) -> Any:
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


def mean_over_ranks(loss: float, dist: Dist) -> float:
    """The loss of the global batch: with open_clip's local_loss each rank scores only its own rows
    against every column, so the ranks' mean is what one process with the whole batch would log."""
    if dist.world_size == 1:
        return loss
    t = torch.tensor([loss], dtype=torch.float64, device=dist.device)
    torch.distributed.all_reduce(t)
    return float(t.item()) / dist.world_size


def out_of_time(t0: float, limit_min: float, dist: Dist) -> bool:
    """Rank 0's clock decides for everyone, so all DDP ranks stop at the same step."""
    flag = torch.tensor([float(time.time() - t0 > 60 * limit_min)], device=dist.device)
    if dist.world_size > 1:
        torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())
