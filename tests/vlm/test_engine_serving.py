"""The trained tiny FaceVLM is a stock model: vLLM serves the align folder and the sft adapter on top of it
(`facevlm engine start --model … --lora name=…`), and the adapter changes the answers."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from fakes import draw_face
from processes import CliEngine, cli_engine

from facevlm.engine import launcher
from facevlm.image import to_data_uri


def _ask(engine: CliEngine, model: str, image_uri: str) -> str:
    image = {"type": "image_url", "image_url": {"url": image_uri}}
    reply = engine.chat(model, [image, {"type": "text", "text": "Is this person smiling?"}], max_tokens=12)
    assert "choices" in reply, reply
    return reply["choices"][0]["message"]["content"] or ""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_vllm_serves_the_vlm_and_its_adapter_changes_the_answer(
    tiny_vlm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEVLM_HOME", str(tmp_path / "home"))
    with cli_engine(tiny_vlm["sft"] / "base", "tiny-vlm", 512, tiny_vlm["sft"] / "adapter") as engine:
        buf = io.BytesIO()
        draw_face(True, True, "black", random.Random(3)).save(buf, format="PNG")
        uri = to_data_uri(buf.getvalue(), "image/png")
        base, adapted = _ask(engine, "tiny-vlm", uri), _ask(engine, "faces", uri)
        assert base != adapted, (base, adapted)
    assert launcher.status() == []
