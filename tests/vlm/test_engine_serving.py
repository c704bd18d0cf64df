"""The trained tiny FaceVLM is a stock model: vLLM serves the align folder and the sft adapter on top of it
(`facevlm engine start --model … --lora name=…`), and the adapter changes the answers."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fakes import draw_face

from facevlm.engine import launcher
from facevlm.image import to_data_uri


def _ask(url: str, model: str, image_uri: str) -> str:
    reply = httpx.post(
        f"{url}/chat/completions",
        timeout=120,
        json={
            "model": model,
            "max_tokens": 12,
            "temperature": 0,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": image_uri}},
                        {"type": "text", "text": "Is this person smiling?"},
                    ],
                }
            ],
        },
    ).json()
    assert "choices" in reply, reply
    return reply["choices"][0]["message"]["content"] or ""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_vllm_serves_the_vlm_and_its_adapter_changes_the_answer(
    tiny_vlm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEVLM_HOME", str(tmp_path / "home"))
    env = {**os.environ}
    cmd = [
        sys.executable,
        "-m",
        "facevlm.cli",
        "engine",
        "start",
        "--model",
        str(tiny_vlm["sft"] / "base"),
        "--port",
        "0",
    ]
    cmd += [
        "--served-model-name",
        "tiny-vlm",
        "--max-model-len",
        "512",
        "--lora",
        f"faces={tiny_vlm['sft'] / 'adapter'}",
    ]
    started = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=580)
    assert started.returncode == 0, started.stderr[-3000:]
    try:
        (handle,) = launcher.status()
        buf = io.BytesIO()
        draw_face(True, True, "black", random.Random(3)).save(buf, format="PNG")
        uri = to_data_uri(buf.getvalue(), "image/png")
        base, adapted = _ask(handle.url, "tiny-vlm", uri), _ask(handle.url, "faces", uri)
        assert base != adapted, (base, adapted)
    finally:
        subprocess.run(
            [sys.executable, "-m", "facevlm.cli", "engine", "stop"], env=env, capture_output=True, timeout=60
        )
    assert launcher.status() == []
