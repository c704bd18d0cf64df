"""/v1/chat/completions end to end on the in-process backend: the tiny FaceVLM trained at test time (its sft
stage as base `tiny-vlm` + LoRA `faces`) behind the real gateway, driven by the official openai client."""

from __future__ import annotations

import json

import openai
import pytest
from chat_fixtures import (
    ADAPTER_ID,
    CLIP_ID,
    TINY_ID,
    chat_gateway_fixture,  # noqa: F401 (fixtures, by their own names)
    face_uri,
    user,
)

from facevlm.data.search_call import tool_schema

QUESTION = "Is this person smiling?"


def _ask(gw, model: str = TINY_ID, **kwargs):
    kwargs.setdefault("messages", [user(QUESTION, face_uri())])
    return gw.openai().chat.completions.create(model=model, temperature=0, **kwargs)


def test_models_list_clip_chat_model_and_adapter(chat_gateway) -> None:
    cards = chat_gateway.openai().models.list().data
    assert [c.id for c in cards] == [CLIP_ID, TINY_ID, ADAPTER_ID]
    kinds = [(c.model_extra["kind"], c.model_extra["parent"]) for c in cards]
    assert kinds == [("embedding", None), ("chat", None), ("chat", TINY_ID)]


def test_completion_with_an_image(chat_gateway) -> None:
    reply = _ask(chat_gateway, max_tokens=6)
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-") and reply.model == TINY_ID
    (choice,) = reply.choices
    assert choice.index == 0 and choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
    assert isinstance(choice.message.content, str) and choice.message.tool_calls is None
    assert "facevlm" not in (choice.message.model_extra or {})
    usage = reply.usage
    assert usage.prompt_tokens > 16 and 1 <= usage.completion_tokens <= 6  # the image alone is 16+ tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    text_only = _ask(chat_gateway, max_tokens=6, messages=[{"role": "user", "content": QUESTION}])
    assert text_only.usage.prompt_tokens < usage.prompt_tokens


def test_streaming_gives_the_same_answer_and_usage_last(chat_gateway) -> None:
    whole = _ask(chat_gateway, max_completion_tokens=8)
    chunks = list(_ask(chat_gateway, max_completion_tokens=8, stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_usage_has_no_usage_chunk(chat_gateway) -> None:
    with chat_gateway.client() as http:
        body = {"model": TINY_ID, "messages": [user(QUESTION, face_uri())], "max_tokens": 4, "stream": True}
        with http.stream("POST", "/v1/chat/completions", json=body) as res:
            assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
            lines = [line for line in res.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert all("usage" not in c and c["choices"] for c in chunks)


def test_n_choices_and_seeded_sampling(chat_gateway) -> None:
    args = {"n": 3, "temperature": 1.5, "top_p": 0.95, "seed": 1234, "max_tokens": 8}
    first = chat_gateway.openai().chat.completions.create(model=TINY_ID, messages=[user(QUESTION, face_uri())], **args)
    again = chat_gateway.openai().chat.completions.create(model=TINY_ID, messages=[user(QUESTION, face_uri())], **args)
    assert [c.index for c in first.choices] == [0, 1, 2]
    assert [c.message.content for c in first.choices] == [c.message.content for c in again.choices]
    assert 3 <= first.usage.completion_tokens <= 3 * 8  # every choice's tokens


def test_the_adapter_changes_the_answer(chat_gateway) -> None:
    base = _ask(chat_gateway, max_tokens=12).choices[0].message.content
    adapted = _ask(chat_gateway, model=ADAPTER_ID, max_tokens=12).choices[0].message.content
    assert base != adapted, (base, adapted)
    assert _ask(chat_gateway, max_tokens=12).choices[0].message.content == base  # the base is restored


def test_stop_cuts_the_answer(chat_gateway) -> None:
    full = _ask(chat_gateway, model=ADAPTER_ID, max_tokens=12).choices[0].message.content
    words = full.split()
    assert len(words) >= 2, full
    cut = _ask(chat_gateway, model=ADAPTER_ID, max_tokens=12, stop=[words[1]]).choices[0]
    assert cut.finish_reason == "stop" and cut.message.content == full[: full.index(words[1])]


def test_multi_turn_with_system_tool_and_assistant_history(chat_gateway) -> None:
    messages = [
        {"role": "system", "content": "You describe faces."},
        user("Find more photos of this person.", face_uri()),
        {"role": "assistant", "content": None, "tool_calls": [_call()]},
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"data": []})},
        {"role": "assistant", "content": "I found none.", "facevlm": {"search": None}},
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
    ]
    reply = _ask(chat_gateway, messages=messages, max_tokens=4)
    assert reply.choices[0].finish_reason in ("stop", "length") and reply.usage.prompt_tokens > 40


def test_client_tools_get_the_standard_answer(chat_gateway) -> None:
    reply = _ask(chat_gateway, tools=[tool_schema()], tool_choice="auto", max_tokens=6)
    choice = reply.choices[0]
    assert "facevlm" not in (choice.message.model_extra or {})
    assert choice.finish_reason in ("stop", "length", "tool_calls")
    assert (choice.finish_reason == "tool_calls") == bool(choice.message.tool_calls)


def test_unknown_models_are_404_like_openai(chat_gateway) -> None:
    for model in ("gpt-4o", "faces2", CLIP_ID):
        with pytest.raises(openai.NotFoundError) as err:
            _ask(chat_gateway, model=model)
        assert err.value.body["code"] == "model_not_found" and model in err.value.body["message"]


def _call() -> dict:
    return {
        "id": "call_1",
        "type": "function",
        "function": {"name": "face_search", "arguments": json.dumps({"query": {"face": {"image": "image_1"}}})},
    }
