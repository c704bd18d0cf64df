"""VQA: questions are the data engine's held-out templates, grading is the data engine's fact checker,
and the task runs through an OpenAI-compatible endpoint: a minimal chat-completions server started by
the test (stopped at the end) answers by rule, so the expected per-type accuracy is known exactly."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import yaml

from facevlm.data.facts import check, extract_facts
from facevlm.data.qa_templates import HELDOUT, TEMPLATES
from facevlm.errors import FacevlmError
from facevlm.eval.tasks import vqa
from facevlm.schema import AttributeValue

YES_NO_OPENERS = ("Is", "Are", "Does", "Do", "Can", "Would")  # first words of the yes/no templates


class _Handler(BaseHTTPRequestHandler):
    seen_images: list = []
    seen_questions: list = []

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        from PIL import Image

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        content = body["messages"][0]["content"]
        url = next(p["image_url"]["url"] for p in content if p["type"] == "image_url")
        question = next(p["text"] for p in content if p["type"] == "text")
        assert url.startswith("data:image/png;base64,")
        _Handler.seen_images.append(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size)
        _Handler.seen_questions.append(question)
        reply = "Yes, I think so." if question.split()[0] in YES_NO_OPENERS else "Happy."
        payload = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": len(reply.split()), "total_tokens": 14},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def chat_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _faces(*labels: dict):
    """An EvalDataset of blank images with these ground-truth labels per face."""
    from facevlm.eval.datasets import EvalDataset

    names = sorted({a for face in labels for a in face})
    attrs = {a: np.asarray([face.get(a, "") for face in labels], dtype=object) for a in names}
    n = len(labels)
    return EvalDataset(
        "t",
        "test",
        [None] * n,
        [f"f{i}" for i in range(n)],
        attrs,
        np.full(n, "", dtype=object),
        [[] for _ in range(n)],
        "fp",
    )


def _question(attribute: str, value: str, **others: str) -> vqa.Question:
    [q] = vqa.build_questions(_faces({attribute: value, **others}), [attribute])
    return q


def test_questions_are_exactly_the_heldout_templates():
    labels = [
        {
            "Smiling": "true",
            "Eyeglasses": "false",
            "No_Beard": "true",
            "Black_Hair": "true",
            "expression": "sad",
            "hair_color": "black",
            "hair_length": "long",
            "Wearing_Hat": "false",
            "skin_tone": "3",
        },
        {
            "Smiling": "false",
            "Eyeglasses": "true",
            "No_Beard": "false",
            "Black_Hair": "false",
            "expression": "happy",
            "hair_color": "brown",
            "hair_length": "short",
            "Wearing_Hat": "true",
        },
    ]
    attributes = [
        "Smiling",
        "Eyeglasses",
        "No_Beard",
        "Black_Hair",
        "expression",
        "hair_color",
        "hair_length",
        "Wearing_Hat",
    ]
    questions = vqa.build_questions(_faces(*labels), attributes)
    assert len(questions) == 2 * len(attributes)
    kinds = set()
    for q in questions:
        kind = q.template.rsplit(".", 1)[0]
        kinds.add(kind)
        assert q.template in HELDOUT, q.template
        template = dict(TEMPLATES[kind])[q.template]
        assert re.fullmatch(re.escape(template).replace(re.escape("{c}"), "(.+)"), q.text), (q.template, q.text)
        trained = [t for tid, t in TEMPLATES[kind] if tid not in HELDOUT]
        assert not any(re.fullmatch(re.escape(t).replace(re.escape("{c}"), ".+"), q.text) for t in trained)
    assert kinds == {"yn.is", "yn.wear", "yn.has", "open.expression", "open.hair_colour", "open.hair_length"}
    by_kind = {(q.item, q.kind): q for q in questions}
    assert by_kind[0, "Smiling"].answer == "yes" and by_kind[1, "Smiling"].answer == "no"
    assert by_kind[0, "No_Beard"].answer == "no"  # No_Beard true: "Can you see a beard on this face?" -> no
    assert by_kind[0, "No_Beard"].text == "Can you see a beard on this face?"
    with pytest.raises(FacevlmError, match="no held-out question for skin_tone"):
        vqa.build_questions(_faces(*labels), ["skin_tone"])
    assert "skin_tone" not in vqa.default_attributes(_faces(*labels))


# (attribute, label, reply, graded right?) - other labels of the face: Eyeglasses false (or hair_color brown)
PHRASINGS = [
    ("Smiling", "true", "Yes, I think so.", True),
    ("Smiling", "true", "Yeah, definitely.", True),
    ("Smiling", "true", "They are grinning.", True),  # no yes/no: the lexicon reads "grinning" as smiling
    ("Smiling", "true", "They seem to be smiling.", True),
    ("Smiling", "true", "No.", False),
    ("Smiling", "true", "Yes, but they are not smiling.", False),
    ("Smiling", "false", "Nope.", True),
    ("Smiling", "false", "No, they have a straight face and are not smiling.", True),
    ("Smiling", "false", "Yes.", False),
    ("Smiling", "true", "Yes, and they wear glasses.", False),  # contradicts Eyeglasses=false
    ("Eyeglasses", "true", "Yes, they are wearing spectacles.", True),
    ("Eyeglasses", "true", "Yes, but no glasses.", False),
    ("Eyeglasses", "true", "They are wearing sunglasses.", False),  # sunglasses are not eyeglasses
    ("No_Beard", "true", "No, they are clean-shaven.", True),
    ("No_Beard", "true", "Yes.", False),
    ("No_Beard", "false", "Yes, a bearded face.", True),
    ("expression", "happy", "Happy.", True),
    ("expression", "happy", "They look cheerful.", True),
    ("expression", "happy", "A joyful look.", True),
    ("expression", "happy", "Sad.", False),
    ("expression", "happy", "I can't tell.", False),
    ("expression", "happy", "Happy, with glasses.", False),  # contradicts Eyeglasses=false
    ("expression", "surprise", "Surprised!", True),
    ("expression", "fear", "They seem scared.", True),
    ("expression", "fear", "Angry.", False),
    ("hair_color", "blond", "Blonde hair.", True),
    ("hair_color", "blond", "They are fair-haired.", True),
    ("hair_color", "blond", "Brown hair.", False),
    ("hair_color", "gray", "Grey hair.", True),
    ("hair_length", "bald", "They are bald.", True),
    ("hair_length", "bald", "Long hair.", False),
]


@pytest.mark.parametrize("attribute, label, reply, right", PHRASINGS)
def test_grader_accepts_every_phrasing_of_the_fact_checker(attribute, label, reply, right):
    others = {} if attribute == "Eyeglasses" else {"Eyeglasses": "false"}
    assert vqa.grade(reply, _question(attribute, label, **others)).ok is right


# yes/no replies and the statement the fact checker must judge the same way
EQUIVALENT = [
    ("Smiling", "true", "Yes, I think so.", "They are smiling."),
    ("Smiling", "false", "Yes, I think so.", "They are smiling."),
    ("Smiling", "false", "No.", "They are not smiling."),
    ("Smiling", "true", "Nope, no smile at all.", "They are not smiling."),
    ("Eyeglasses", "true", "No, no glasses.", "They are not wearing glasses."),
    ("No_Beard", "true", "No.", "They do not have a beard."),
    ("No_Beard", "false", "No.", "They do not have a beard."),
    ("Black_Hair", "false", "Yes.", "They have black hair."),
    ("Black_Hair", "false", "No.", "They do not have black hair."),
    ("Wearing_Hat", "true", "Yes, a cap.", "They are wearing a cap."),
]


@pytest.mark.parametrize("attribute, label, reply, said", EQUIVALENT)
def test_grader_equals_facts_check_on_yes_no(attribute, label, reply, said):
    q = _question(attribute, label)
    truth = extract_facts([AttributeValue(attribute, label)])[0]
    assert vqa.grade(reply, q).ok is check(said, truth, truth, strict=False).ok


def test_grader_equals_facts_check_on_open_answers():
    """Every generation phrase of every value, asked about every labelled value: the grader agrees with
    facts.check, and (semantics, not only agreement) accepts a phrase exactly when it names the label."""
    from facevlm.data.lexicon import LEXICON

    n = 0
    for attribute, concept in (
        ("expression", "expression"),
        ("hair_color", "hair_colour"),
        ("hair_length", "hair_length"),
    ):
        for label in LEXICON[concept][1]:
            if (
                attribute == "hair_length"
                or label in ("black", "brown", "blond", "red", "gray", "white")
                or concept == "expression"
            ):
                q = _question(attribute, label)
                truth, _ = extract_facts([AttributeValue(attribute, label)])
                for value, texts in LEXICON[concept][1].items():
                    for text in texts:
                        reply = f"{text[0].upper()}{text[1:]}."
                        assert vqa.grade(reply, q).ok is check(reply, truth, truth, strict=False).ok
                        assert vqa.grade(reply, q).ok is (value == label), (attribute, label, reply)
                        n += 1
    assert n > 150


def test_vqa_over_openai_endpoint(tmp_path, eval_home, stored_faces, chat_server):
    from facevlm.eval.datasets import DatasetSpec, load_dataset
    from facevlm.eval.suite import load_suite, run_suite

    suite = {
        "name": "vqa",
        "n_boot": 50,
        "min_group_size": 3,
        "datasets": [{"name": "faces", "source": "store", "ref": str(stored_faces)}],
        "models": [{"name": "endpoint", "kind": "chat", "model": "any-model", "url": chat_server}],
        "tasks": [
            {"task": "vqa", "attributes": ["expression", "Smiling"]},
            {"task": "identity"},
            {"task": "efficiency", "n_images": 4, "n_queries": 2, "repeats": 1},
        ],
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(suite))
    summary = run_suite(load_suite(tmp_path / "s.yaml"), tmp_path / "run", log=lambda _: None)
    assert [s["task"] for s in summary["skipped"]] == ["identity"]  # a chat model has no embeddings
    result = json.loads((tmp_path / "run" / "faces__endpoint__vqa.json").read_text())
    data = load_dataset(DatasetSpec(name="faces", source="store", ref=str(stored_faces)))
    expr, smiling = data.labels("expression"), data.labels("Smiling")
    m = result["metrics"]
    assert m["accuracy/expression"] == pytest.approx(np.mean(expr == "happy"))
    assert m["accuracy/Smiling"] == pytest.approx(np.mean(smiling == "true"))
    assert m["accuracy"] == pytest.approx((np.sum(expr == "happy") + np.sum(smiling == "true")) / (2 * len(data)))
    assert m["tokens_per_s"] > 0 and result["ci"]["accuracy"][0] <= m["accuracy"] <= result["ci"]["accuracy"][1]
    assert set(result["groups"]) == {"gender_presentation", "skin_tone"}
    assert _Handler.seen_images and all(s == (32, 32) for s in _Handler.seen_images)
    # (a) what reached the model is exactly the held-out wording, never a training template
    asked = {s["question"] for s in result["details"]["samples"]}
    assert asked == (
        {text for tid, text in TEMPLATES["open.expression"] if tid in HELDOUT}
        | {text.format(c="smiling") for tid, text in TEMPLATES["yn.is"] if tid in HELDOUT}
    )
    assert asked <= set(_Handler.seen_questions) and len(result["details"]["samples"]) == 2 * len(data)
    assert {s["template"] for s in result["details"]["samples"]} == {"open.expression.h1", "yn.is.h1"} <= HELDOUT
    eff = json.loads((tmp_path / "run" / "faces__endpoint__efficiency.json").read_text())["metrics"]
    assert eff["tokens_per_s"] > 0


def test_vqa_endpoint_down_is_a_clear_error(tmp_path, stored_faces):
    from facevlm.errors import FacevlmError
    from facevlm.eval.models import ModelSpec, build_model

    model = build_model(ModelSpec(name="dead", kind="chat", model="m", url="http://127.0.0.1:9/v1"))
    from PIL import Image

    with pytest.raises(FacevlmError, match="chat request to http://127.0.0.1:9/v1 failed"):
        model.answer(Image.new("RGB", (8, 8)), "hi?")


@pytest.mark.parametrize(
    ("attribute", "truth", "majority", "right"),
    [
        ("Smiling", "false", "false", True),  # "Is … smiling?" -> "no"
        ("Smiling", "true", "false", False),
        ("No_Beard", "true", "true", True),  # asks about a beard -> "no"
        ("No_Beard", "false", "true", False),
        ("expression", "happy", "happy", True),
        ("expression", "sad", "happy", False),
    ],
)
def test_majority_baseline_answers_the_majority_label_per_question_type(attribute, truth, majority, right):
    q = _question(attribute, truth)
    assert vqa.grade(vqa.majority_reply(q, majority), q).ok is right


def test_majority_baseline_runs_as_a_vqa_model():
    class Majority:
        name, majority = "majority", {"Smiling": "false"}

    data = _faces({"Smiling": "false"}, {"Smiling": "true"}, {"Smiling": "false"})
    questions = vqa.build_questions(data, ["Smiling"])
    replies = [r for r, _ in vqa._replies(Majority(), data, questions)]
    assert replies == ["no", "no", "no"]


def test_competence_table_from_the_paired_comparison(tmp_path, eval_home, stored_faces, chat_server):
    """`facevlm eval competence` reads the suite's paired majority-vs-model comparison: one row per question
    type under its concept, trusted exactly when the paired CI lies above 0."""
    from facevlm.errors import FacevlmError
    from facevlm.eval.competence import competence_table, write_table
    from facevlm.eval.suite import load_suite, run_suite

    suite = {
        "name": "vqa",
        "n_boot": 50,
        "datasets": [{"name": "faces", "source": "store", "ref": str(stored_faces), "split": "test"}],
        "models": [
            {"name": "endpoint", "kind": "chat", "model": "any-model", "url": chat_server},
            {"name": "majority", "kind": "majority", "options": {"dataset": str(stored_faces), "split": "train"}},
        ],
        "tasks": [{"task": "vqa", "attributes": ["expression", "Smiling"]}],
        "paired": [{"a": "majority", "b": "endpoint", "tasks": ["vqa"]}],
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(suite))
    run_suite(load_suite(tmp_path / "s.yaml"), tmp_path / "run", log=lambda _: None)
    (pair_file,) = (tmp_path / "run").glob("paired__*.json")
    pair = json.loads(pair_file.read_text())
    table = competence_table([tmp_path / "run"], "endpoint")
    assert set(table["concepts"]) == {"expression", "smiling"}
    for concept, qtype in (("expression", "expression"), ("smiling", "Smiling")):
        row = table["concepts"][concept]
        low, high = pair["ci"][f"accuracy/{qtype}"]
        assert row["question_type"] == qtype and row["ci"] == [low, high]
        assert row["diff"] == pytest.approx(pair["b"][f"accuracy/{qtype}"] - pair["a"][f"accuracy/{qtype}"])
        assert row["trusted"] is (low > 0)
    with pytest.raises(FacevlmError, match="local model folder"):  # "any-model" is an endpoint's name
        write_table(table)
    written = write_table(table, tmp_path)
    assert json.loads(written.read_text())["concepts"] == table["concepts"]
    with pytest.raises(FacevlmError, match="no paired comparison"):
        competence_table([tmp_path / "run"], "endpoint", baseline="random")
