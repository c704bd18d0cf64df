"""The acceptance flow on the trained default FaceVLM (`facevlm-chat-small`, made by `make models`), in
process, with real photos: upload sample photos to a gallery, ask a photo's expression, ask a retrieval
question and get gallery results back in the reply. Slow: it loads the real model. Needs `make models`
(CI does not train): `make test-models` runs it."""

from __future__ import annotations

import pytest
from chat_fixtures import data_uri, live_gateway, serve_config, user

from facevlm.serve.config import ChatConfig

pytestmark = [pytest.mark.slow, pytest.mark.models, pytest.mark.timeout(900)]
MODEL = "facevlm-chat-small"


def _sample(assets_home, name: str) -> bytes:
    return (assets_home / "assets" / "samples" / name).read_bytes()


@pytest.fixture(scope="module")
def real_gateway(tmp_path_factory, serve_model, assets_home):
    from facevlm.paths import models_dir

    if not (models_dir() / MODEL / "config.json").is_file():
        pytest.fail(f"no trained {MODEL} under {models_dir()}: run `make models` first")
    chat = ChatConfig(model=MODEL, backend="in_process", max_tokens=128, default_max_tokens=96)
    home = tmp_path_factory.mktemp("chat-real")
    with live_gateway(serve_config(home, serve_model, chat, detect=True)) as live:
        yield live


def test_upload_ask_the_expression_then_search_the_gallery(real_gateway, assets_home) -> None:
    with real_gateway.client() as http:
        files = [("file", (n, _sample(assets_home, n), "image/jpeg")) for n in ("obama.jpg", "obama2.jpg", "biden.jpg")]
        added = http.post("/v1/galleries/demo/faces", files=files)
    assert added.status_code == 201, added.text
    obama = {face["id"] for face in added.json()["data"] if face["source"].startswith("obama")}
    client = real_gateway.openai()
    photo = data_uri(_sample(assets_home, "obama3.jpg"))
    asked = client.chat.completions.create(
        model=MODEL, temperature=0, messages=[user("What is the facial expression of this person?", photo)]
    )
    answer = asked.choices[0].message
    extra = (answer.model_extra or {}).get("facevlm")
    assert answer.content and (extra is None or set(extra) == {"unsure"}), answer
    if extra:  # the model is not trusted on expression (competence.json): the expert answers, or the gateway is unsure
        unsure = extra["unsure"]
        assert "expression" in unsure["concepts"], answer
        if any(r["concept"] == "expression" for r in unsure.get("expert", [])):
            assert answer.content.startswith("An expression model trained on real faces reads this face as"), answer
        else:
            assert answer.content.startswith("I can't tell"), answer
    found = client.chat.completions.create(
        model=MODEL,
        temperature=0,
        messages=[user("Find more photos of this person in my gallery.", photo)],
        extra_body={"facevlm": {"gallery": "demo"}},
    )
    message = found.choices[0].message
    results = (message.model_extra or {}).get("facevlm")
    assert results, f"the model did not ask for a search: {message.content!r}"
    assert results["error"] is None and results["search"]["gallery"] == "demo", results
    assert obama & {hit["id"] for hit in results["search"]["data"]}, results["search"]
    assert message.content.startswith(("Here", "I can't tell")) and "Biden" not in message.content
