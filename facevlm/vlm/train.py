"""`facevlm finetune finetune/vlm-*.yaml`: FaceVLM's two training stages (LLaVA's recipe) in one loop.

- `stage: align` trains the connector (and the vision tower if `train_vision`) with the LM frozen, on
  caption samples; the run folder is a complete HF model folder: the base the LoRA stage starts from.
- `stage: sft` puts a peft LoRA on the text model's linear layers (4-bit base with `lora.qlora`) and
  tunes on face QA, by default training the connector beside it (`train_connector`, as LLaVA's second
  stage does). It writes `adapter/` (a standard peft folder), the merged model at the top of the run
  folder (what the in-process chat loads without peft) and, when sft changed more than the LoRA, `base/`:
  `init` with the connector (and tower) sft trained. vLLM applies LoRA to the LM only, so the adapter's
  `base_model_name_or_path` names `base/` (or `init` itself when only the LoRA trained), and
  `--model <run>/base --lora-modules name=<run>/adapter` gives exactly the merged model's answers.

accelerate handles devices, mixed precision (bf16 on a GPU that has it) and several processes: run it under
`torchrun --nproc_per_node N -m facevlm.cli finetune RECIPE` or `accelerate launch`; on 2 CPU cores it is
one process. A `time_limit_min` stops the loop early and still saves, so `make models` keeps its budget.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from facevlm.config import load_recipe
from facevlm.errors import FacevlmError
from facevlm.paths import models_dir
from facevlm.vlm.config import VLMRecipe
from facevlm.vlm.data import Collator, LengthBatches, caption_samples, qa_samples

ADAPTER_DIR = "adapter"
BASE_DIR = "base"
# The parts of an image-text model, as Idefics3 / LLaVA / Qwen2-VL name them.
VISION = ("vision_model", "vision_tower", "visual")
CONNECTOR = ("connector", "multi_modal_projector", "merger")


def lora_target_regex(modules: list[str]) -> str:
    """peft `target_modules` as a regex that matches the text model's layers only (not the vision tower's
    q/k/v/out or fc layers, which would make an adapter vLLM cannot load onto the LM)."""
    names = "|".join(sorted(set(modules)))
    return rf".*(?:text_model|language_model)\.layers\.\d+\.(?:self_attn|mlp)\.(?:{names})"


def build_model(cfg: VLMRecipe) -> tuple[Any, Any]:
    from facevlm.vlm.build import adopt_chat_template, compose, load_vlm

    if cfg.init == "compose":
        return compose(cfg.arch)
    model, processor = load_vlm(cfg.init, quantize_4bit=cfg.stage == "sft" and cfg.lora.qlora)
    adopt_chat_template(model, processor, cfg.init)  # a hub model's template rarely marks the loss spans
    return model, processor


def prepare_trainable(model: Any, cfg: VLMRecipe) -> Any:
    """Freeze what the stage does not train; sft wraps the model in a peft LoRA."""
    for p in model.parameters():
        p.requires_grad_(False)
    vision = _part(model, *VISION)
    if cfg.stage == "align":
        for p in _part(model, *CONNECTOR).parameters():
            p.requires_grad_(True)
        if cfg.train_vision:
            for p in vision.parameters():
                p.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.lora.qlora:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=lora_target_regex(cfg.lora.target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    parts = [CONNECTOR] if cfg.train_connector else []
    for names in parts + ([VISION] if cfg.train_vision else []):
        for p in _part(model, *names).parameters():
            p.requires_grad_(True)
    return model


def _part(model: Any, *names: str) -> Any:
    """The named sub-module of an image-text model, the outermost one if several match: Idefics3 / LLaVA /
    Qwen2-VL spell the parts differently and nest them differently (Qwen2-VL's `merger` connector sits
    inside its `visual` tower; a tower may hold a `vision_model` of its own)."""
    if hasattr(model, "get_base_model"):  # a peft wrapper
        model = model.get_base_model()
    found = [(path.count("."), path) for path, _ in model.named_modules() if path.rsplit(".", 1)[-1] in names]
    if not found:
        raise FacevlmError(f"{type(model).__name__}: no {' / '.join(names)} module to train or freeze")
    return model.get_submodule(min(found)[1])


def _vision_only_ids(model: Any) -> set[int]:
    """The vision tower's own parameters (the vision learning rate), not a connector nested inside it."""
    connector = {id(p) for p in _part(model, *CONNECTOR).parameters()}
    return {id(p) for p in _part(model, *VISION).parameters()} - connector


def _samples(cfg: VLMRecipe) -> list:
    return caption_samples(cfg.data, seed=cfg.seed) if cfg.stage == "align" else qa_samples(cfg.data)


def run_dir_for(cfg: VLMRecipe, out: str | None) -> Path:
    return Path(out or cfg.out or models_dir() / cfg.model).expanduser()


def train(cfg: VLMRecipe, out: str | None = None, steps: int | None = None, progress: bool = True) -> Path:
    """Run one stage; returns the run folder (a loadable model folder)."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_cosine_schedule_with_warmup

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    steps = steps or cfg.steps
    set_seed(cfg.seed)
    accel = Accelerator(gradient_accumulation_steps=cfg.accum_steps, mixed_precision=_precision(cfg))
    run_dir = run_dir_for(cfg, out)
    model, processor = build_model(cfg)
    model = prepare_trainable(model, cfg)
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_train = sum(p.numel() for p in trainable)
    vision_ids = _vision_only_ids(model)
    groups = [
        {"params": [p for p in trainable if id(p) not in vision_ids], "lr": cfg.lr},
        {"params": [p for p in trainable if id(p) in vision_ids], "lr": cfg.lr * cfg.vision_lr_scale},
    ]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=cfg.weight_decay)
    sched = get_cosine_schedule_with_warmup(opt, cfg.warmup_steps, steps)
    model, opt, sched = accel.prepare(model, opt, sched)
    samples = _samples(cfg)
    image_tokens = getattr(processor, "image_seq_len", 64)
    batches = iter(LengthBatches(samples, cfg.batch_size, image_tokens, seed=cfg.seed + accel.process_index))
    collate = Collator(processor, cfg.max_length)
    log: list[dict[str, float]] = []
    start, tokens, stopped = time.time(), 0, "steps"
    bar = _bar(steps, progress and accel.is_main_process, f"{cfg.model} ({cfg.stage})")
    model.train()
    for step in range(1, steps + 1):
        for _ in range(cfg.accum_steps):
            batch = None
            while batch is None:
                batch = collate(next(batches))
            batch = {k: v.to(accel.device) for k, v in batch.items()}
            with accel.accumulate(model):
                loss = model(**batch).loss
                accel.backward(loss)
                opt.step()
                sched.step()
                opt.zero_grad()
            tokens += int(batch["attention_mask"].sum())
        elapsed = time.time() - start
        if step % cfg.log_every == 0 or step == 1 or step == steps:
            log.append({"step": step, "loss": float(loss.detach()), "seconds": round(elapsed, 1)})
            if not progress and accel.is_main_process:  # logs only: one line per logged step
                print(
                    f"step {step}/{steps} loss {log[-1]['loss']:.4f} {tokens / max(elapsed, 1e-9):.0f} tok/s",
                    flush=True,
                )
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}", tok_s=f"{tokens / max(elapsed, 1e-9):.0f}")
        if cfg.time_limit_min and elapsed > cfg.time_limit_min * 60:
            stopped = f"time limit ({cfg.time_limit_min} min) at step {step}"
            break
    bar.close()
    accel.wait_for_everyone()
    if accel.is_main_process:
        metrics = {
            "stage": cfg.stage,
            "steps_done": step,
            "stopped": stopped,
            "seconds": round(time.time() - start, 1),
            "tokens": tokens,
            "tokens_per_s": round(tokens / max(time.time() - start, 1e-9), 1),
            "trainable_params": n_train,
            "samples": len(samples),
            "dropped_over_max_length": collate.dropped,
            "loss": log,
        }
        save(accel.unwrap_model(model), processor, cfg, run_dir, metrics)
    return run_dir


def _precision(cfg: VLMRecipe) -> str:
    """accelerate's mixed precision: bf16 autocast where the hardware has faster bf16 matmuls (a GPU, or a CPU
    where they measure faster: about 2x a float32 step on this project's 2-core EPYC; `hardware.bf16_faster`),
    else float32. The trained weights stay float32 either way."""
    from facevlm.vlm.build import bf16_available

    if cfg.precision == "fp32" or (cfg.precision == "auto" and not bf16_available()):
        return "no"
    return "bf16"


def _bar(total: int, enabled: bool, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="step")


def save(model: Any, processor: Any, cfg: VLMRecipe, run_dir: Path, metrics: dict[str, Any]) -> None:
    """align: the model folder. sft: `adapter/` (peft) + the merged model folder. Written into a temporary
    sibling and renamed, so a crash mid-save never leaves a half-written model under the final name."""
    tmp = run_dir.with_name(run_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if cfg.stage == "sft":
        model.save_pretrained(tmp / ADAPTER_DIR)
        base = cfg.init
        if cfg.train_connector or cfg.train_vision:  # the adapter's base is `init` with the parts sft changed
            _base_with_trained_parts(model, cfg).save_pretrained(tmp / BASE_DIR)
            processor.save_pretrained(tmp / BASE_DIR)
            base = str(run_dir / BASE_DIR)
        _point_adapter_at_base(tmp / ADAPTER_DIR, base)
        merged = _merged(model, cfg, tmp / BASE_DIR if base != cfg.init else cfg.init)
    else:
        merged = model
    merged.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    (tmp / "facevlm_vlm.json").write_text(json.dumps({"recipe": asdict(cfg), "metrics": metrics}, indent=2))
    if run_dir.exists():
        shutil.rmtree(run_dir)
    tmp.rename(run_dir)


def _point_adapter_at_base(adapter_dir: Path, init: str) -> None:
    """peft records `base_model_name_or_path`; make it the resolved base folder so the adapter folder is
    self-describing for vLLM and `PeftModel.from_pretrained` alike."""
    from facevlm.vlm.build import resolve_source

    cfg_path = adapter_dir / "adapter_config.json"
    data = json.loads(cfg_path.read_text())
    data["base_model_name_or_path"] = init if Path(init).is_absolute() else resolve_source(init)
    cfg_path.write_text(json.dumps(data, indent=2))


def _base_with_trained_parts(peft_model: Any, cfg: VLMRecipe) -> Any:
    """`init` in full precision with the connector / tower weights sft trained, and no LoRA."""
    from facevlm.vlm.build import load_vlm

    base, _ = load_vlm(cfg.init)
    trained = peft_model.get_base_model()
    base.generation_config = trained.generation_config  # the end-of-turn tokens training used
    for names, on in ((CONNECTOR, cfg.train_connector), (VISION, cfg.train_vision)):
        if on:
            _part(base, *names).load_state_dict(_part(trained, *names).state_dict())
    return base


def _merged(peft_model: Any, cfg: VLMRecipe, base_source: str | Path) -> Any:
    """The LoRA merged into the base weights. A 4-bit (QLoRA) base cannot be merged losslessly, so the
    base is reloaded in full precision and the trained adapter applied to it."""
    if not cfg.lora.qlora:
        return peft_model.merge_and_unload()
    import tempfile

    from peft import PeftModel

    from facevlm.vlm.build import load_vlm

    base, _ = load_vlm(str(base_source))
    with tempfile.TemporaryDirectory() as tmp:
        peft_model.save_pretrained(tmp)
        return PeftModel.from_pretrained(base, tmp).merge_and_unload()


def train_recipe(recipe: Path, *, resume: str | None, out: str | None, steps: int | None, progress: bool) -> Path:
    """The `kind: vlm` entry of `facevlm finetune`."""
    if resume:
        raise FacevlmError("--resume is not supported for kind: vlm yet (stages are short; rerun the stage)")
    cfg = load_recipe(VLMRecipe, recipe)
    return train(cfg, out=out, steps=steps, progress=progress)
