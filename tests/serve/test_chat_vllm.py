"""The vLLM backend: the gateway starts `facevlm engine` itself (the tiny FaceVLM's sft base + its LoRA
adapter `faces`, engine env .venv-engine), once for this module, answers through it in the same format as
the in-process backend, and stops the engine by PID when it stops."""

from __future__ import annotations

import pytest
from chat_fixtures import (
    ADAPTER_ID,
    CLIP_ID,
    TINY_ID,
    chat_gateway_fixture,  # noqa: F401 (fixture, by its own name)
    face_uri,
    live_gateway,
    serve_config,
    tiny_chat,
    user,
)

from facevlm.data.search_call import tool_schema
from facevlm.engine import launcher

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
MESSAGES = [user("Is this person smiling?", face_uri())]


@pytest.fixture(scope="module")
def engine_gateway(tmp_path_factory, serve_model, tiny_vlm, assets_home):
    from facevlm import paths

    home = tmp_path_factory.mktemp("vllm-home")
    (home / "assets").symlink_to(paths.assets_dir(), target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACEVLM_HOME", str(home))  # the engine's PID record and log live under it
        chat = tiny_chat(tiny_vlm, backend="vllm", max_model_len=512)
        with live_gateway(serve_config(home, serve_model, chat)) as live:
            (handle,) = launcher.status()
            yield live, handle
        assert launcher.find(handle.port) is None and launcher.status() == []  # stopped by PID


def _ask(gw, model: str = TINY_ID, **kwargs):
    kwargs = {"temperature": 0, "max_tokens": 12, **kwargs}
    return gw.openai().chat.completions.create(model=model, messages=MESSAGES, **kwargs)


def _shape(reply) -> dict:
    """The answer's structure: every key and the type of every value, texts and ids left out."""
    data = reply.model_dump(exclude_none=True)
    return {
        "top": sorted(data),
        "choices": [sorted(c) for c in data["choices"]],
        "message": [sorted(c["message"]) for c in data["choices"]],
        "finish": [c["finish_reason"] in ("stop", "length") for c in data["choices"]],
        "usage": sorted(data["usage"]),
    }


def test_models_and_the_engine_behind_the_gateway(engine_gateway) -> None:
    gw, handle = engine_gateway
    assert [c.id for c in gw.openai().models.list().data] == [CLIP_ID, TINY_ID, ADAPTER_ID]
    assert handle.served_model_name == TINY_ID and handle.host == "127.0.0.1"


def test_vllm_answers_like_the_in_process_backend(engine_gateway, chat_gateway) -> None:
    gw, _ = engine_gateway
    for model in (TINY_ID, ADAPTER_ID):
        engine, local = _ask(gw, model), _ask(chat_gateway, model)
        assert _shape(engine) == _shape(local)
        assert engine.usage.prompt_tokens == local.usage.prompt_tokens  # the same conversation, image included
        assert 1 <= engine.usage.completion_tokens <= 12
    assert _ask(gw).choices[0].message.content != _ask(gw, ADAPTER_ID).choices[0].message.content


def test_vllm_streams_with_usage(engine_gateway) -> None:
    gw, _ = engine_gateway
    whole = _ask(gw, ADAPTER_ID)
    chunks = list(_ask(gw, ADAPTER_ID, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage


def test_vllm_n_stop_seed_and_client_tools(engine_gateway) -> None:
    gw, _ = engine_gateway
    sampled = [_ask(gw, ADAPTER_ID, n=2, temperature=1.0, seed=5) for _ in range(2)]
    assert [c.index for c in sampled[0].choices] == [0, 1]
    assert [c.message.content for c in sampled[0].choices] == [c.message.content for c in sampled[1].choices]
    full = _ask(gw, ADAPTER_ID).choices[0].message.content
    words = full.split()
    assert len(words) >= 2, full
    cut = _ask(gw, ADAPTER_ID, stop=[words[1]]).choices[0]
    assert cut.finish_reason == "stop" and cut.message.content == full[: full.index(words[1])]
    tools = _ask(gw, tools=[tool_schema()]).choices[0]
    assert (tools.finish_reason == "tool_calls") == bool(tools.message.tool_calls)
    assert "facevlm" not in (tools.message.model_extra or {})
