"""The face_search tool call: parsing the shapes models emit, one-line validation errors, schema export."""

from __future__ import annotations

import json

import pytest

from facevlm.data.search_call import (
    SCHEMA_VERSION,
    ComposedQuery,
    FaceQuery,
    SearchCall,
    TextQuery,
    json_schema,
    tool_schema,
)
from facevlm.errors import FacevlmError
from facevlm.schema import SENSITIVE, VOCABULARY

GOOD = [
    {"query": {"text": "smiling people with glasses"}, "filters": {"Smiling": True, "Eyeglasses": True}},
    {"query": {"face": {"image": "image_1"}, "match": "same_person"}, "top_k": 5},
    {"query": {"face": {"face_id": "1234"}, "match": "look_alike"}, "gallery": "family"},
    {"query": {"face": {"image": "image_2"}, "edit": "smiling", "edit_weight": 0.8}},
    {"query": {"face": {"image": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"}}},
    {"query": {"text": "red hair"}, "filters": {"hair_color": ["red", "blond"], "min_prob": 0.9}, "version": 1},
]

BAD = [  # (arguments, words the one-line message must contain)
    ({"query": {}}, "query needs"),
    ({"query": {"face": {"face_id": "7", "image": "image_1"}}}, "exactly one of face_id or image"),
    ({"query": {"face": {}}}, "exactly one"),
    ({"query": {"text": ""}}, "query.text"),
    ({"query": {"text": "x"}, "top_k": 0}, "top_k"),
    ({"query": {"text": "x"}, "top_k": 101}, "top_k"),
    ({"query": {"face": {"image": "photo.jpg"}}}, "image_N"),
    ({"query": {"face": {"image": "image_0"}}}, "image_N"),
    ({"query": {"face": {"face_id": "7"}, "match": "twin"}}, "match"),
    ({"query": {"face": {"face_id": "7"}, "edit": "smiling", "edit_weight": 9}}, "edit_weight"),
    ({"query": {"text": "x"}, "filters": {"Eyeglases": True}}, "unknown attribute 'Eyeglases'"),
    ({"query": {"text": "x"}, "filters": {"age": 30}}, "numeric"),
    ({"query": {"text": "x"}, "filters": {"hair_color": "green"}}, "filters.hair_color"),
    ({"query": {"text": "x"}, "filters": {"min_prob": 2}}, "min_prob"),
    ({"query": {"text": "x"}, "filters": {"race": "White"}}, "sensitive"),
    ({"query": {"text": "x"}, "version": 2}, "version"),
    ({"query": {"text": "x"}, "gallery": "../etc"}, "gallery"),
    ({"query": {"text": "x"}, "extra": 1}, "extra"),
]


@pytest.mark.parametrize("args", GOOD)
def test_good_calls_parse_and_round_trip(args):
    call = SearchCall.parse(args)
    item = call.to_tool_call()
    assert item["type"] == "function" and item["function"]["name"] == "face_search"
    assert item["id"].startswith("call_")
    assert isinstance(item["function"]["arguments"], str)  # OpenAI sends arguments as a JSON string
    assert SearchCall.parse(item) == call  # a tool_calls item parses back to the same call
    assert SearchCall.parse(json.dumps(item)) == call
    assert SearchCall.parse({"name": "face_search", "arguments": call.arguments_dict()}) == call
    assert call.arguments.version == SCHEMA_VERSION


def test_query_kinds_and_defaults():
    assert isinstance(SearchCall.parse(GOOD[0]).arguments.query, TextQuery)
    face = SearchCall.parse({"query": {"face": {"image": "image_1"}}}).arguments
    assert isinstance(face.query, FaceQuery) and face.query.match == "same_person"
    assert (face.gallery, face.top_k) == ("default", 10)
    composed = SearchCall.parse(GOOD[3]).arguments.query
    assert isinstance(composed, ComposedQuery) and composed.edit == "smiling" and composed.edit_weight == 0.8


def test_filter_values_are_canonical_schema_strings():
    call = SearchCall.parse(
        {"query": {"text": "x"}, "filters": {"Eyeglasses": "true", "hair_color": ["red"], "min_prob": 0.5}}
    )
    assert call.filter_values() == {"Eyeglasses": ["true"], "hair_color": ["red"]}


@pytest.mark.parametrize("args,words", BAD)
def test_bad_calls_fail_with_one_line(args, words):
    with pytest.raises(FacevlmError) as err:
        SearchCall.parse(args)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("search call") and words in msg, msg


def test_bad_json_and_wrong_tool_name():
    with pytest.raises(FacevlmError, match="invalid JSON at line 1"):
        SearchCall.parse('{"query": ')
    with pytest.raises(FacevlmError, match="name must be 'face_search'"):
        SearchCall.parse({"type": "function", "function": {"name": "web_search", "arguments": "{}"}})
    with pytest.raises(FacevlmError, match="arguments: invalid JSON"):
        SearchCall.parse({"name": "face_search", "arguments": "{not json"})


def test_sensitive_filters_need_opt_in():
    args = {"query": {"text": "x"}, "filters": {"age_group": "30-39"}}
    with pytest.raises(FacevlmError, match="sensitive"):
        SearchCall.parse(args)
    assert SearchCall.parse(args, allow_sensitive=True).filter_values() == {"age_group": ["30-39"]}


def test_tool_call_id_is_deterministic():
    a = SearchCall.parse(GOOD[1]).to_tool_call()
    assert a == SearchCall.parse(GOOD[1]).to_tool_call()
    assert a["id"] != SearchCall.parse(GOOD[2]).to_tool_call()["id"]
    assert SearchCall.parse(GOOD[1]).to_tool_call("call_x")["id"] == "call_x"


def _resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref")
    return schema["$defs"][ref.rsplit("/", 1)[-1]] if ref else node


def test_tool_schema_is_an_openai_tools_entry():
    entry = tool_schema()
    json.dumps(entry)  # serialisable as sent to an API
    fn = entry["function"]
    assert entry["type"] == "function" and fn["name"] == "face_search" and fn["description"]
    params = fn["parameters"]
    assert params["type"] == "object" and params["required"] == ["query"]
    assert str(SCHEMA_VERSION) in params["description"]
    assert params["additionalProperties"] is False
    query = params["properties"]["query"]
    assert "anyOf" in query and len(query["anyOf"]) == 3 and "oneOf" not in json.dumps(params)
    for branch in query["anyOf"]:  # every $ref resolves and forbids extra keys (branches cannot overlap)
        assert _resolve(params, branch)["additionalProperties"] is False
    filters = _resolve(params, params["properties"]["filters"])
    props = filters["properties"]
    assert not (SENSITIVE & set(props)), "sensitive filters are left out unless allowed"
    assert {"Eyeglasses", "Smiling", "hair_color", "expression", "min_prob"} <= set(props)
    hair_enum = json.dumps(props["hair_color"])
    assert all(v in hair_enum for v in VOCABULARY["hair_color"].values)
    assert "age" not in props and "yaw" not in props  # numeric attributes are not filterable
    with_sensitive = tool_schema(allow_sensitive=True)["function"]["parameters"]
    assert "age_group" in _resolve(with_sensitive, with_sensitive["properties"]["filters"])["properties"]


def test_json_schema_export_is_versioned():
    schema = json_schema()
    assert schema["$id"].endswith(f"v{SCHEMA_VERSION}")
    assert schema["properties"]["name"]["const"] == "face_search"
    assert "SearchArguments" in schema["$defs"]
    json.dumps(schema)


@pytest.mark.parametrize(
    "args",
    [
        {"gallery": "..", "query": {"text": "x"}},
        {"gallery": "Family", "query": {"text": "x"}},
        {"gallery": "a/b", "query": {"text": "x"}},
        {"gallery": "\uff0e\uff0e", "query": {"text": "x"}},
        {"version": True, "query": {"text": "x"}},
        {"query": {"text": " \t "}},
        {"query": {"face": {"face_id": "\u00b2"}}},
        {"query": {"face": {"face_id": "1" * 19}}},
    ],
)
def test_call_refuses_what_the_gallery_would(args):
    """The call's schema carries the gallery's own identifier rules (facevlm.schema), so a call the model
    emits is refused here, with a message, rather than reaching the gallery as a path or a bad id."""
    with pytest.raises(FacevlmError, match="search call"):
        SearchCall.parse({"name": "face_search", "arguments": args})
