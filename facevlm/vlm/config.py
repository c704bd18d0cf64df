"""The FaceVLM recipe (`kind: vlm` in finetune/vlm-*.yaml): what a recipe may say, checked on load.

Two stages, as in LLaVA, share one recipe shape and differ in `stage`:
- `align`: the connector (and optionally the vision tower) learns to map image features into the frozen
  LM's input space, on the data engine's captions ("describe this face" -> caption);
- `sft`: instruction tuning on the data engine's face QA with a peft LoRA on the LM (QLoRA with
  `lora.qlora: true` on a GPU), starting from the `align` stage's model folder (`init`).

`arch` says how the model is made when a stage starts from parts rather than from a VLM folder: a text LM
(an asset name, a local folder or a hub id) joined to a vision tower by Idefics3's pixel-shuffle
connector, so the result is a stock `Idefics3ForConditionalGeneration` that vLLM serves unpatched. A user
with a hub can instead point `init` at any image-text-to-text model (SmolVLM, Qwen2-VL, LLaVA): the
trainer only needs `AutoModelForImageTextToText` + `AutoProcessor` with a chat template (one without
`{% generation %}` loss marks is swapped for the project's, facevlm.vlm.build.adopt_chat_template).

Reading or validating a recipe needs neither torch nor transformers, so it fails before a model is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from facevlm.errors import FacevlmError

VISION_INITS = ("dinov2", "random")


@dataclass
class ArchConfig:
    """How `init: compose` builds the model: `text` LM + a ViT tower (`vision`) + Idefics3's connector.

    `vision: dinov2` starts the tower from the DINOv2 ViT-S/14 asset (facevlm.vlm.dinov2), `random` from
    scratch with the same shape (the control that says what pretraining is worth). The tower sees one
    `image_size` tile; the connector folds `scale_factor`^2 neighbouring patches into one LM token, so an
    image costs ((image_size / 14) / scale_factor)^2 tokens: 224 px and 4 -> 16 tokens.
    `tiny` shrinks the model for tests and smoke runs: text config keys (e.g. num_hidden_layers: 2 keeps the
    LM's pretrained embeddings and first layers) and `vision_*` keys for a random tower; None keeps all.
    """

    text: str = "smollm2-135m-instruct"
    vision: str = "dinov2"
    vision_weights: str = "dinov2-vits14-imgfocus"
    image_size: int = 224
    patch_size: int = 14
    scale_factor: int = 4
    tiny: dict[str, int] | None = None  # tests: text/vision config overrides, e.g. {num_hidden_layers: 2}

    def __post_init__(self) -> None:
        if self.vision not in VISION_INITS:
            raise FacevlmError(f"arch.vision: {self.vision!r} is not one of {', '.join(VISION_INITS)}")
        if self.image_size % self.patch_size:
            raise FacevlmError(f"arch.image_size: {self.image_size} is not a multiple of the patch size")
        if (self.image_size // self.patch_size) % self.scale_factor:
            raise FacevlmError(
                f"arch.scale_factor: {self.image_size // self.patch_size} patches per side do not divide by "
                f"{self.scale_factor}"
            )

    @property
    def image_seq_len(self) -> int:
        return ((self.image_size // self.patch_size) // self.scale_factor) ** 2


@dataclass
class DataMix:
    """Where a stage's samples come from. `datasets`: stored datasets (names under $FACEVLM_HOME/datasets or
    paths); `repeat` oversamples small ones (the real photos beside 12k rendered faces). sft reads each
    dataset's exported QA chat samples (`<dataset>/qa/<split>.jsonl`, written by the data engine's `qa`
    stage); align reads the records' captions and crops the faces with the training crop rule."""

    datasets: list[str] = field(default_factory=lambda: ["synthetic"])
    split: str = "train"
    repeat: dict[str, int] = field(default_factory=dict)
    max_samples: int | None = None  # per dataset, before repeat (smoke runs)
    crop_margin: float = 0.2  # align: the face crop around each labelled box
    pack: int = 1  # sft: join up to this many samples about one picture into one conversation (data.pack_turns)
    # sft: samples that end in a face_search call, repeated: a call must be exact JSON in the shared schema,
    # where a yes/no answer has many right phrasings, so the rarer, stricter format gets more of the steps
    call_repeat: int = 1

    def __post_init__(self) -> None:
        unknown = sorted(set(self.repeat) - set(self.datasets))
        if unknown:
            raise FacevlmError(f"data.repeat: {', '.join(unknown)} not in data.datasets")
        bad = [k for k, v in self.repeat.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1]
        if bad:
            raise FacevlmError(f"data.repeat.{bad[0]}: must be an integer >= 1")
        if self.pack < 1:
            raise FacevlmError("data.pack: must be >= 1")
        if not isinstance(self.call_repeat, int) or isinstance(self.call_repeat, bool) or self.call_repeat < 1:
            raise FacevlmError("data.call_repeat: must be an integer >= 1")


@dataclass
class LoraSettings:
    """peft LoRA on the LM's linear layers (`target_modules` names them inside the text model only, so the
    adapter stays the shape vLLM's `--lora-modules` loads). `qlora` loads the frozen base in 4-bit NF4
    (bitsandbytes) before adding the adapter: the GPU recipe for models that do not fit in fp16."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    qlora: bool = False

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1 or not 0 <= self.dropout < 1 or not self.target_modules:
            raise FacevlmError("lora: r and alpha must be >= 1, dropout in [0, 1), target_modules not empty")


@dataclass
class VLMRecipe:
    """One finetune/vlm-*.yaml recipe (`kind: vlm`)."""

    kind: Literal["vlm"] = "vlm"
    stage: Literal["align", "sft"] = "align"
    model: str = "facevlm-chat-small"  # the run folder's name under $FACEVLM_HOME/models
    init: str = "compose"  # compose (from `arch`) | a VLM folder / model name / hub id to start from
    arch: ArchConfig = field(default_factory=ArchConfig)
    data: DataMix = field(default_factory=DataMix)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train_vision: bool = False  # also train the vision tower (both stages)
    train_connector: bool = True  # sft: keep training the connector beside the LoRA (saved in <run>/base)
    out: str = ""  # run folder; default $FACEVLM_HOME/models/<model>
    steps: int = 200
    batch_size: int = 8
    accum_steps: int = 1
    lr: float = 1e-3  # connector (align) / LoRA (sft)
    vision_lr_scale: float = 0.1
    weight_decay: float = 0.0
    warmup_steps: int = 10
    max_length: int = 384  # tokens per sample; longer samples are dropped, counted in the metrics
    time_limit_min: float | None = None  # stop (and save) when reached: `make models` has a time budget
    log_every: int = 10
    seed: int = 0
    threads: int | None = None  # torch intra-op threads (None: torch's default)
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 autocast where the hardware has it

    def __post_init__(self) -> None:
        if self.stage not in ("align", "sft"):
            raise FacevlmError(f"stage: {self.stage!r} is not one of align, sft")
        if self.stage == "sft" and self.init == "compose":
            raise FacevlmError("stage sft: `init` must name the align stage's model folder (or any VLM)")
        for name in ("steps", "batch_size", "accum_steps", "max_length", "log_every"):
            if getattr(self, name) < 1:
                raise FacevlmError(f"{name}: must be >= 1")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise FacevlmError(f"precision: {self.precision!r} is not one of auto, bf16, fp32")
        if self.lr <= 0 or self.warmup_steps < 0:
            raise FacevlmError("lr must be > 0 and warmup_steps >= 0")
