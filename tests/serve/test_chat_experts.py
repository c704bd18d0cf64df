"""Expression and smiling answered from the gallery's expression expert where the chat model is not trusted
(facevlm.serve.chat_experts), on a real sample photo, through the running gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from chat_fixtures import SCRIPTED_ID, Live, live_gateway, serve_config, user
from chat_fixtures import scripted_backend_fixture as scripted_backend_fixture  # noqa: F401

from facevlm.image import decode_image, to_data_uri
from facevlm.serve.chat_bench import sample_photos
from facevlm.serve.config import ChatConfig
from facevlm.vlm.inference import Reply

pytestmark = pytest.mark.assets


@pytest.fixture(scope="module")
def labelling_gateway(tmp_path_factory, serve_model, assets_home, scripted_backend) -> Iterator[Live]:
    """Face detection and the expression expert on, as serve/cpu.yaml has them; the scripted chat model,
    whose replies no competence table backs."""
    home = tmp_path_factory.mktemp("chat-experts")
    chat = ChatConfig(model=SCRIPTED_ID, backend="in_process", max_images=3, timeout_s=30)
    with live_gateway(serve_config(home, serve_model, chat, detect=True, label=True), scripted_backend) as live:
        yield live


def _ask(live: Live, question: str, image_uri: str, stream: bool = False) -> dict:
    body = {"model": SCRIPTED_ID, "messages": [user(question, image_uri)], "stream": stream}
    client = live.client()
    if not stream:
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        return response.json()["choices"][0]["message"]
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        chunks = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    extras = [d["facevlm"] for d in deltas if "facevlm" in d]
    return {"content": "".join(d.get("content") or "" for d in deltas), "facevlm": extras[0] if extras else None}


def test_expression_and_smiling_come_from_the_expert(labelling_gateway, scripted_backend, monkeypatch) -> None:
    photo = sample_photos(("obama.jpg",))[0]
    experts = labelling_gateway.app.state.galleries.experts
    verdict = experts.expression(decode_image(photo).image)
    assert verdict is not None  # one face: the expert's own reading, what a gallery would store
    detections = []
    detect = experts.pipeline.detect_batch
    monkeypatch.setattr(experts.pipeline, "detect_batch", lambda images: detections.append(1) or detect(images))
    uri = to_data_uri(photo, "image/jpeg")
    scripted_backend.script(Reply("They look angry and they are wearing glasses."))
    for stream in (False, True):
        message = _ask(labelling_gateway, "What is the expression of this person?", uri, stream)
        unsure = message["facevlm"]["unsure"]
        assert unsure["model_reply"] == "They look angry and they are wearing glasses."
        (reading,) = unsure["expert"]
        assert (reading["concept"], reading["attribute"], reading["model"]) == (
            "expression",
            "expression",
            "fer-mini-xception",
        )
        assert reading["value"] == verdict.value and reading["prob"] == pytest.approx(verdict.prob, abs=1e-4)
        score = f"{round(verdict.prob, 4):.2f}"
        lead = f"An expression model trained on real faces reads this face as {verdict.value} (model score {score})."
        assert message["content"].startswith(lead)
        assert "I can't tell glasses reliably" in message["content"]  # the rest stays unsure
    smiling = verdict.smiling()
    scripted_backend.script(Reply("Yes."))
    message = _ask(labelling_gateway, "Is this person smiling?", uri)
    (reading,) = message["facevlm"]["unsure"]["expert"]
    assert (reading["attribute"], reading["value"]) == ("Smiling", smiling.value)
    word = "smiling" if smiling.value == "true" else "not smiling"
    score = f"{round(smiling.prob, 4):.2f}"
    assert (
        message["content"]
        == f"An expression model trained on real faces reads this face as {word} (model score {score})."
    )
    scripted_backend.script(Reply("Yes, they look happy."))  # both concepts: one sentence
    message = _ask(labelling_gateway, "Is this person smiling?", uri)
    assert [r["concept"] for r in message["facevlm"]["unsure"]["expert"]] == ["smiling", "expression"]
    assert message["content"].count("An expression model") == 1 and " and as " in message["content"]
    # the expert read the face where the model view found it, with the gallery's own detector: no second pass
    assert detections == [] and labelling_gateway.app.state.chat_view.pipeline.detector is experts.pipeline.detector


def test_no_reading_without_exactly_one_face(labelling_gateway, scripted_backend) -> None:
    scripted_backend.script(Reply("Yes, they are smiling."))
    group = to_data_uri(sample_photos(("multi_face.jpg",))[0], "image/jpeg")
    message = _ask(labelling_gateway, "Is this person smiling?", group)
    assert message["facevlm"]["unsure"]["expert"] == []  # whose face would it be?
    assert message["content"].startswith("I can't tell smiling reliably")
