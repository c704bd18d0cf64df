"""The FaceCLIP fine-tuning recipe: what a finetune/clip-*.yaml file may say, checked on load.

A recipe is data (`facevlm.config.load_recipe` fills these dataclasses from YAML; unknown keys are errors)
and is validated in `__post_init__`, so a bad recipe fails before any model is built. Kept apart from the
trainer (train.py) so that reading or validating a recipe needs neither torch nor open_clip, and so the
fields a user can set are listed in one short place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from facevlm.errors import FacevlmError


@dataclass
class DataConfig:
    datasets: list[str] = field(default_factory=lambda: ["synthetic"])  # names under $FACEVLM_HOME/datasets or paths
    splits: list[str] = field(default_factory=lambda: ["train"])
    crop_margin: float = 0.2
    max_records: int | None = None
    workers: int = 0
    # niceness of the loader workers (0-19): at 19 a worker decodes on what the training step's threads leave
    # idle instead of taking turns with them; on 2 CPU cores that is what makes one worker pay (docs/benchmarks.md)
    worker_nice: int = 0
    # dataset -> how many times its records enter the mix (oversampling a small set, e.g. {real: 20}: 82 real
    # faces beside 20k rendered ones); each repetition draws its own caption and augmentation
    repeat: dict[str, int] = field(default_factory=dict)
    # dataset -> fraction of its identities kept out of training (facevlm.clip.data.held_out), on which
    # `facevlm eval calibrate` then fits the zero-shot calibration: e.g. {real: 0.3}
    holdout: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("repeat", "holdout"):
            unknown = sorted(set(getattr(self, name)) - set(self.datasets))
            if unknown:
                raise FacevlmError(f"data.{name}: {', '.join(unknown)} not in data.datasets")
        nice = self.worker_nice
        if isinstance(nice, bool) or not isinstance(nice, int) or not 0 <= nice <= 19:
            raise FacevlmError(f"data.worker_nice: {nice!r} must be an integer in 0-19")
        bad = [k for k, v in self.holdout.items() if not isinstance(v, (int, float)) or not 0 <= v < 1]
        if bad:
            raise FacevlmError(f"data.holdout.{bad[0]}: must be a fraction in [0, 1)")
        bad = [k for k, v in self.repeat.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1]
        if bad:
            raise FacevlmError(f"data.repeat.{bad[0]}: must be an integer >= 1")


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
    # auto: bf16 autocast on a GPU with bf16, and on a CPU only where a bf16 matmul measures >= 1.1x faster than
    # fp32 (facevlm.hardware.bf16_faster: a Zen 4 EPYC yes, an Emerald Rapids VM without AMX no), else fp32
    precision: Literal["auto", "fp32", "bf16", "amp"] = "auto"
    # dropout in the frozen layers of the towers (lock_*_tower leaves them in train mode). False: they run as at
    # inference, ~28% of a bf16 text forward saved on CPU (train_step.frozen_modules); True: as before
    frozen_dropout: bool = False
    channels_last: bool = True  # NHWC image tower and batches: oneDNN's fast conv layout (CPU and GPU)
    # HF text tower: each batch's captions run in groups of similar length, each padded to its own longest
    # (train_step.group_text_by_length); the batch, its negatives and the loss are unchanged. Off by default:
    # 1.23x a fp32 step on CPU, but no gain under bf16 and +0.7 GB RSS in whole runs (docs/benchmarks.md)
    text_length_groups: bool = False
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
