"""Multi-process training through the real entry point: `torchrun -m facevlm.cli finetune` with two
CPU ranks (gloo) must take the very steps one process takes with the combined batch. This is the
DDP path a GPU user runs with NCCL; only the backend differs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from facevlm.clip.train import run
from facevlm.clip.train_config import DataConfig, FinetuneConfig


def _recipe(dataset: Path, batch_size: int) -> dict:
    return {
        "kind": "clip",
        "model": "facevlm-clip-tiny",
        "pretrained_towers": False,
        "steps": 3,
        "batch_size": batch_size,
        "lr": 1e-3,
        "warmup_steps": 1,
        "checkpoint_every": 2,
        "log_every": 1,
        "keep_checkpoints": 0,
        "threads": 1,
        "precision": "fp32",  # one process vs two ranks must match: float32, not bf16 rounding
        "data": {"datasets": [str(dataset)], "splits": ["train"]},
        "aug": {"scale": [0.85, 1.0]},
    }


def _losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.timeout(300)
def test_two_ranks_match_one_process_with_the_combined_batch(toy_dataset: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    cfg = _recipe(toy_dataset, 16)
    single = run(
        FinetuneConfig(**{**cfg, "data": DataConfig(**cfg["data"]), "out": str(tmp_path / "one")}), progress=False
    )

    recipe = tmp_path / "clip-ddp.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(toy_dataset, 8)))  # 2 ranks x 8 = the same 16 faces a step
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "facevlm.cli",
            "finetune",
            str(recipe),
            "--out",
            str(tmp_path / "two"),
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = tmp_path / "two"

    assert yaml.safe_load((two / "config.yaml").read_text())["world_size"] == 2
    assert _losses(two) == pytest.approx(_losses(single), rel=1e-4)  # logged: the global batch's loss
    a, b = load_file(str(single / "open_clip_model.safetensors")), load_file(str(two / "open_clip_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:  # Adam divides by sqrt(v): float noise in near-zero gradients shows at ~1e-5; lr is 1e-3
        torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=1e-4)

    # and the steps did move the weights (two runs that never trained would agree as well)
    from facevlm.clip.factory import create

    torch.manual_seed(0)  # the seed train.run uses before building the model
    start = create("facevlm-clip-tiny", pretrained_towers=False).model.state_dict()
    assert max((b[k].float() - start[k].float()).abs().max().item() for k in b if k in start) > 1e-3
