"""The competence gate: the gateway says it is unsure about attributes its model is not shown to know."""

from __future__ import annotations

import json

import pytest
from chat_fixtures import SCRIPTED_ID, face_uri, user
from chat_fixtures import scripted_backend_fixture as scripted_backend_fixture  # noqa: F401
from chat_fixtures import scripted_gateway_fixture as scripted_gateway_fixture  # noqa: F401

from facevlm.serve import chat_competence as competence
from facevlm.vlm.inference import Reply

TRUSTED_GLASSES = competence.Competence(
    {
        "eyeglasses": {"trusted": True, "accuracy": 0.95, "baseline": 0.9},
        "smiling": {"trusted": False, "accuracy": 0.6, "baseline": 0.66},
    },
    "test table",
)


def test_an_untrusted_question_is_answered_unsure_whatever_the_reply() -> None:
    said = competence.unsure("Is she wearing glasses?", "Yes.", competence.Competence())
    assert said is not None and said["concepts"] == ["eyeglasses"] and said["model_reply"] == "Yes."
    assert "can't tell glasses reliably" in said["text"] and "has not been checked" in said["text"]


def test_measured_and_unmeasured_concepts_are_named_apart() -> None:
    said = competence.unsure("Describe this face.", "They are smiling and have black hair.", TRUSTED_GLASSES)
    assert said is not None and said["concepts"] == ["smiling", "hair_colour"]
    assert "were not better than always giving the most common answer" in said["text"]
    assert "not been checked against hand-labelled real faces for hair colour" in said["text"]
    assert said["evidence"] == "test table"


def test_sensitive_concepts_are_named_as_apparent() -> None:
    said = competence.unsure("How old is she, and is she a woman?", "She is in her 30s and feminine.", TRUSTED_GLASSES)
    assert said is not None and set(said["concepts"]) == {"age_group", "gender"}
    assert "can't tell apparent age or apparent gender reliably" in said["text"]


def test_trusted_and_attribute_free_replies_pass() -> None:
    assert competence.unsure("Is she wearing glasses?", "Yes, they wear glasses.", TRUSTED_GLASSES) is None
    assert competence.unsure("How many faces are there?", "I can see two faces.", competence.Competence()) is None
    assert competence.unsure("Is she smiling?", None, TRUSTED_GLASSES) is None  # a tool call: no text


def test_a_missing_or_broken_table_trusts_nothing(tmp_path) -> None:
    assert competence.load(tmp_path).concepts == {} and competence.load(None).concepts == {}
    (tmp_path / "competence.json").write_text("{not json")
    assert competence.load(tmp_path).concepts == {}
    (tmp_path / "competence.json").write_text(json.dumps({"concepts": {"eyeglasses": {"trusted": True}}}))
    table = competence.load(tmp_path)
    assert table.trusted("eyeglasses") and not table.trusted("smiling")


def test_last_question_reads_the_last_user_turn() -> None:
    messages = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": [{"type": "image", "image": None}, {"type": "text", "text": "Is she smiling?"}]},
    ]
    assert competence.last_question(messages) == "Is she smiling?"


@pytest.fixture
def tables(scripted_gateway):
    """The served model's tables, restored after the test (the gateway loads them at start-up)."""
    state = scripted_gateway.app.state
    saved = state.chat_competence
    assert saved is not None and saved[SCRIPTED_ID].concepts == {}  # no table beside the model: nothing trusted
    yield state
    state.chat_competence = saved


def test_the_gateway_answers_unsure_and_keeps_the_models_words(scripted_gateway, scripted_backend, tables) -> None:
    scripted_backend.script(Reply("Yes, they are wearing glasses."))
    client = scripted_gateway.client()
    body = {"model": SCRIPTED_ID, "messages": [user("Is this person wearing glasses?", face_uri())]}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    message = response.json()["choices"][0]["message"]
    assert message["content"].startswith("I can't tell glasses reliably from a photo yet")
    assert message["facevlm"]["unsure"]["model_reply"] == "Yes, they are wearing glasses."
    assert message["facevlm"]["unsure"]["concepts"] == ["eyeglasses"]
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        chunks = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    texts = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert "".join(t for t in texts if t) == message["content"]  # the streamed answer is the checked one
    assert [c["choices"][0]["delta"]["facevlm"] for c in chunks if "facevlm" in c["choices"][0]["delta"]] == [
        message["facevlm"]
    ]
    tables.chat_competence = {SCRIPTED_ID: TRUSTED_GLASSES}
    answer = client.post("/v1/chat/completions", json=body).json()
    assert answer["choices"][0]["message"]["content"] == "Yes, they are wearing glasses."
    assert answer["choices"][0]["message"].get("facevlm") is None
    tables.chat_competence = None  # chat.unsure_below_majority: false
    scripted_backend.script(Reply("They are smiling."))
    answer = client.post("/v1/chat/completions", json=body).json()
    assert answer["choices"][0]["message"]["content"] == "They are smiling."
