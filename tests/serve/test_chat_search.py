"""Search inside chat: when the model answers with a face_search call, the gateway runs it on the user's
gallery (real photos: two of Obama, one of Biden, with face detection and identity vectors) and answers one
assistant message with its own text and `message.facevlm`. The chat model here is a ScriptedBackend (the
backend interface only: the test writes the model's reply), so every branch of the search step is
reached on purpose; the real models are tested in test_chat_api.py and test_chat_vllm.py."""

from __future__ import annotations

import json

import pytest
from chat_fixtures import (
    SCRIPTED_ID,
    data_uri,
    scripted_backend_fixture,  # noqa: F401 (fixture, by its own name)
    scripted_gateway_fixture,  # noqa: F401 (fixture, by its own name)
    search_call,
    user,
)

from facevlm.data.search_call import TOOL_NAME, tool_schema
from facevlm.vlm.inference import Reply

PREFIX = "I can't tell who someone is from their face, but I can look for this face in your gallery."
SAME_PERSON = {"gallery": "default", "query": {"face": {"image": "image_1"}, "match": "same_person"}, "top_k": 5}


def _sample(assets_home, name: str) -> bytes:
    return (assets_home / "assets" / "samples" / name).read_bytes()


@pytest.fixture(scope="module")
def people(scripted_gateway, assets_home) -> dict[str, str]:
    """Gallery `people`: obama.jpg labelled "Barack Obama" by the user, obama2.jpg and biden.jpg unlabelled."""
    ids = {}
    with scripted_gateway.client() as http:
        for name, identity in (("obama.jpg", "Barack Obama"), ("obama2.jpg", None), ("biden.jpg", None)):
            body = {"image": data_uri(_sample(assets_home, name)), **({"identity": identity} if identity else {})}
            added = http.post("/v1/galleries/people/faces", json=body)
            assert added.status_code == 201, added.text
            (face,) = added.json()["data"]
            ids[name] = face["id"]
    return ids


def _chat(gw, backend, reply: Reply, messages: list, **kwargs):
    backend.script(reply)
    return gw.openai().chat.completions.create(model=SCRIPTED_ID, messages=messages, **kwargs)


def _results(message) -> dict:
    return (message.model_extra or {})["facevlm"]


def test_a_retrieval_question_runs_the_search_on_the_users_gallery(
    scripted_gateway, scripted_backend, people, assets_home
) -> None:
    photo = data_uri(_sample(assets_home, "obama3.jpg"))
    reply = _chat(
        scripted_gateway,
        scripted_backend,
        search_call(SAME_PERSON, PREFIX),
        [user("Who is this? Find more photos of this person.", photo)],
        extra_body={"facevlm": {"gallery": "people"}},
    )
    (choice,) = reply.choices
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    content = choice.message.content
    assert content.startswith(PREFIX + " Here are 2 faces from gallery people that look like the same person.")
    assert content.endswith("Labelled in your gallery: Barack Obama.") and "Biden" not in content
    results = _results(choice.message)
    assert results["error"] is None
    args = json.loads(results["tool_call"]["function"]["arguments"])
    assert results["tool_call"]["function"]["name"] == TOOL_NAME and args["gallery"] == "people"
    search = results["search"]
    assert {h["id"] for h in search["data"]} == {people["obama.jpg"], people["obama2.jpg"]}
    assert all(h["thumbnail_url"] == f"/v1/galleries/people/faces/{h['id']}/thumbnail" for h in search["data"])
    with scripted_gateway.client() as http:  # the very answer of POST /v1/faces/search for those arguments
        direct = http.post("/v1/faces/search", json={**args, "query": {**args["query"], "face": {"image": photo}}})
        assert direct.status_code == 200 and direct.json() == search
        thumb = http.get(search["data"][0]["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert reply.usage.prompt_tokens == 11 and reply.usage.completion_tokens == 5
    (gen,) = scripted_backend.seen[-1:]
    assert gen.tools == [tool_schema()] and gen.model == SCRIPTED_ID
    image = gen.messages[0]["content"][0]
    assert image["type"] == "image" and image["image"].size != (0, 0)  # the decoded photo, never stored
    with scripted_gateway.client() as http:
        assert http.get("/v1/galleries/people").json()["faces"] == 3


def test_the_search_streams_as_one_delta_with_the_results(scripted_gateway, scripted_backend, people, assets_home):
    photo = data_uri(_sample(assets_home, "obama3.jpg"))
    scripted_backend.script(search_call({**SAME_PERSON, "gallery": "people"}))
    stream = scripted_gateway.openai().chat.completions.create(
        model=SCRIPTED_ID,
        messages=[user("Find this person.", photo)],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    found = [d for d in deltas if (d.model_extra or {}).get("facevlm")]
    assert len(found) == 1 and found[0].content.startswith("Here are 2 faces from gallery people")
    assert {h["id"] for h in found[0].model_extra["facevlm"]["search"]["data"]} == {
        people["obama.jpg"],
        people["obama2.jpg"],
    }
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.total_tokens == 16


def test_a_gallery_face_reference_is_the_query_by_id(scripted_gateway, scripted_backend, people) -> None:
    ref = f"facevlm://people/faces/{people['obama2.jpg']}"
    reply = _chat(
        scripted_gateway,
        scripted_backend,
        search_call({"gallery": "people", "query": {"face": {"image": "image_1"}, "match": "look_alike"}}),
        [user("Find people who look like this.", ref)],
    )
    results = _results(reply.choices[0].message)
    args = json.loads(results["tool_call"]["function"]["arguments"])
    assert args["query"]["face"] == {"face_id": people["obama2.jpg"]}
    ids = [h["id"] for h in results["search"]["data"]]
    assert people["obama2.jpg"] not in ids and set(ids) == {people["obama.jpg"], people["biden.jpg"]}
    assert reply.choices[0].message.content.startswith("Here are 2 faces from gallery people that look alike.")


def test_text_search_and_the_config_default_gallery(scripted_gateway, scripted_backend, people) -> None:
    call = {"query": {"text": "a man in a suit"}, "top_k": 2}
    reply = _chat(scripted_gateway, scripted_backend, search_call(call), [user("Find men in suits.")])
    results = _results(reply.choices[0].message)
    assert results["search"] is None and results["error"]["code"] == "gallery_not_found"  # `default` is empty
    named = _chat(scripted_gateway, scripted_backend, search_call({**call, "gallery": "people"}), [user("Find.")])
    message = named.choices[0].message
    assert message.content.startswith("Here are 2 faces from gallery people matching \u201ca man in a suit\u201d.")
    assert len(_results(message)["search"]["data"]) == 2


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"gallery": "people", "query": {"face": {"image": "image_2"}}}, "missing_image"),
        ({"gallery": "nobody", "query": {"text": "smiling"}}, "gallery_not_found"),
        ({"gallery": "people", "query": {"colour": "red"}}, "invalid_request"),
        ({"gallery": "people", "query": {"text": "x"}, "filters": {"race": "white"}}, "invalid_request"),
    ],
)
def test_a_search_that_cannot_run_is_explained_not_failed(
    scripted_gateway, scripted_backend, people, assets_home, arguments, code
) -> None:
    photo = data_uri(_sample(assets_home, "obama3.jpg"))
    reply = _chat(scripted_gateway, scripted_backend, search_call(arguments), [user("Find.", photo)])
    message = reply.choices[0].message
    results = _results(message)
    assert results["search"] is None and results["error"]["code"] == code, results
    assert message.content == f"I could not run that search: {results['error']['message']}"
    assert "\n" not in message.content


def test_client_tools_get_the_call_back_instead(scripted_gateway, scripted_backend, people) -> None:
    tools = [tool_schema()]
    reply = _chat(scripted_gateway, scripted_backend, search_call(SAME_PERSON), [user("Find.")], tools=tools)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and "facevlm" not in (choice.message.model_extra or {})
    (call,) = choice.message.tool_calls
    assert call.id == "call_scripted" and call.function.name == TOOL_NAME
    assert json.loads(call.function.arguments) == SAME_PERSON and choice.message.content is None
    assert scripted_backend.seen[-1].tools == tools
    call = search_call(SAME_PERSON, "ok")
    none = _chat(scripted_gateway, scripted_backend, call, [user("Find.")], tools=tools, tool_choice="none")
    assert none.choices[0].finish_reason == "stop" and none.choices[0].message.tool_calls is None
    assert none.choices[0].message.content == "ok"
    stream = scripted_gateway.openai().chat.completions.create(
        model=SCRIPTED_ID, messages=[user("Find.")], tools=tools, stream=True
    )
    chunks = list(stream)
    calls = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert [(d.index, d.id, d.function.name) for d in calls] == [(0, "call_scripted", TOOL_NAME)]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_other_tool_calls_without_client_tools_are_dropped(scripted_gateway, scripted_backend) -> None:
    web = {"id": "c", "type": "function", "function": {"name": "web", "arguments": "{}"}}
    other = Reply("Sure.", [web], 0, 0, "tool_calls")
    reply = _chat(scripted_gateway, scripted_backend, other, [user("Look it up.")])
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and choice.message.content == "Sure." and choice.message.tool_calls is None


def test_n_choices_each_run_their_search(scripted_gateway, scripted_backend, people) -> None:
    call = search_call({"gallery": "people", "query": {"text": "a smiling man"}, "top_k": 1})
    reply = _chat(scripted_gateway, scripted_backend, call, [user("Find.")], n=2)
    assert [c.index for c in reply.choices] == [0, 1]
    assert all(len(_results(c.message)["search"]["data"]) == 1 for c in reply.choices)
    assert reply.usage.completion_tokens == 10
