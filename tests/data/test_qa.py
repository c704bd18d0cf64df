"""QA chat samples: answers faithful to labels, balanced yes/no, held-out templates disjoint, retrieval
answered with valid face_search calls, no names, sensitive questions only when enabled."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from click.testing import CliRunner
from fakes import random_record
from wording_checks import SENSITIVE_WORDS, confident, independent_violations

from facevlm.data.facts import check, extract_facts
from facevlm.data.qa import HELDOUT, TEMPLATES, QAConfig, qa_samples
from facevlm.data.search_call import SearchCall

# facts.py concept -> the schema attribute that independently decides a yes/no answer
BINARY_ATTR = {
    "eyeglasses": "Eyeglasses",
    "smiling": "Smiling",
    "hat": "Wearing_Hat",
    "sunglasses": "sunglasses",
    "face_mask": "face_mask",
    "earrings": "Wearing_Earrings",
    "goatee": "Goatee",
    "mustache": "Mustache",
}


def _records(n: int, seed: int):
    rng = random.Random(seed)
    return [random_record(rng, i, p_label=0.6) for i in range(n)]


def _generate(n: int = 160, data_seed: int = 1, **kw) -> tuple[list[dict], dict, Counter]:
    records = _records(n, data_seed)
    stats: Counter = Counter()
    samples = list(qa_samples(records, QAConfig(**kw), stats))
    return samples, {r.id: r for r in records}, stats


def _text(message: dict) -> str:
    return " ".join(p["text"] for p in message.get("content") or [] if p["type"] == "text")


def _pairs(sample: dict):
    """(user text, assistant message, turn meta) per turn."""
    msgs = sample["messages"]
    return [(_text(msgs[i]), msgs[i + 1], sample["turns"][i // 2]) for i in range(0, len(msgs), 2)]


@pytest.mark.parametrize("sensitive", [False, True])
def test_answers_never_contradict_their_labels(sensitive):
    samples, records, stats = _generate(sensitive=sensitive, per_face=4)
    assert len(samples) > 500
    checked = 0
    for s in samples:
        faces = [records[i] for i in s["record_ids"]]
        facts = [extract_facts(r.attributes, sensitive=sensitive) for r in faces]
        for question, answer, meta in _pairs(s):
            if "tool_calls" in answer:
                continue
            text = _text(answer)
            if len(faces) == 2 and "First image:" in text:  # each part about its own face
                head, _, rest = text.partition("First image:")
                first, _, second = rest.partition("Second image:")
                parts = [(first, 0), (second, 1)]
            else:
                parts = [(text, 0)]
            for part, k in parts:
                result = check(part, [], facts[k][0], conflicted=facts[k][1])
                assert result.ok, (question, text, result)
                assert not independent_violations(part, faces[k], sensitive), (question, text)
                checked += 1
            if meta["kind"] == "yes_no" and meta["concept"] in BINARY_ATTR:
                label = confident(faces[0]).get(BINARY_ATTR[meta["concept"]])
                assert label == ("true" if meta["answer"] == "yes" else "false"), (question, text)
            if meta["kind"] == "yes_no":
                assert text.startswith("Yes" if meta["answer"] == "yes" else "No"), text
            if meta["kind"] == "count":
                n = faces[0].n_faces
                assert f" {n} " in text or ["one", "two", "three", "four"][n - 1] in text, text
            if meta["kind"] == "compare" and meta["template"].startswith("cmp.same"):
                same = faces[0].identity == faces[1].identity
                assert text.startswith("Yes" if same else "No"), text
    assert checked > 400


def test_yes_no_is_balanced_and_kinds_are_all_produced():
    samples, _, stats = _generate(n=200, sensitive=True)
    yes, no = stats["answer:yes"], stats["answer:no"]
    assert yes + no > 200 and 0.4 < yes / (yes + no) < 0.6, stats
    kinds = Counter(t["kind"] for s in samples for t in s["turns"])
    assert {"yes_no", "open", "accessories", "describe", "count", "compare", "retrieval"} <= set(kinds), kinds
    multi = [s for s in samples if len(s["turns"]) > 1]
    assert multi and all(2 <= len(s["turns"]) <= 3 for s in multi)
    assert any(s["turns"][-1]["kind"] == "retrieval" for s in multi)  # a conversation may end in a search
    calls = Counter(t.get("call") for s in samples for t in s["turns"] if t["kind"] == "retrieval")
    assert {"ret.same", "ident", "ret.alike", "ret.text", "ret.edit", "ret.editalike", "ret.id"} <= set(calls), calls
    compares = Counter(t["template"].split(".")[1] for s in samples for t in s["turns"] if t["kind"] == "compare")
    assert {"same", "both", "older"} <= set(compares), compares


def test_message_format_is_openai_style():
    samples, records, _ = _generate(n=60)
    for s in samples:
        assert json.loads(json.dumps(s)) == s and s["tools"] == ["face_search"]
        msgs = s["messages"]
        assert [m["role"] for m in msgs] == ["user", "assistant"] * (len(msgs) // 2)
        first = msgs[0]["content"]
        images = [p["image"] for p in first if p["type"] == "image"]
        assert first[-1]["type"] == "text" and first[: len(images)] == [{"type": "image", "image": i} for i in images]
        assert all(p["type"] == "text" for m in msgs[1:] for p in m.get("content") or [])  # image only in turn 1
        kinds = [t["kind"] for t in s["turns"]]
        if "count" in kinds:
            assert images == [f"full:{s['record_ids'][0]}"]
        elif any(t.get("call") == "ret.id" for t in s["turns"]):
            assert images == []
        else:
            assert images == s["record_ids"]  # face crops by record id (the exporter links them)


def test_retrieval_answers_are_valid_search_calls_and_identity_is_never_named():
    samples, records, _ = _generate(n=200)
    n_calls = 0
    for s in samples:
        for _question, answer, meta in _pairs(s):
            if meta["kind"] != "retrieval":
                assert "tool_calls" not in answer
                continue
            (item,) = answer["tool_calls"]
            call = SearchCall.parse(item)  # validates against the schema, sensitive filters refused
            n_calls += 1
            q = call.arguments.query
            if meta["call"] in ("ret.same", "ident"):
                assert q.match == "same_person" and q.face.image == "image_1"
            if meta["call"] == "ident":
                said = _text(answer)
                assert "can't tell who" in said and not any(
                    w[:1].isupper() for w in said.split()[1:] if w not in ("I",)
                ), said
            if meta["call"] == "ret.text":
                labels = records[s["record_ids"][0]]
                for name, values in call.filter_values().items():  # filters come from this face's labels
                    assert labels.get(name) in values
            if meta["call"] in ("ret.edit", "ret.editalike"):
                assert q.edit and q.face.image == "image_1"
    assert n_calls > 30


@pytest.mark.parametrize("sensitive", [False, True])
def test_every_search_call_runs_through_the_gallery_executor(sensitive):
    """The contract between training data and serving: each call the VLM learns maps onto a gallery Query
    (face ids are gallery row ids, image refs are chat images, filters are canonical attribute values)."""
    from facevlm.index.search import from_search_call

    samples, records, _ = _generate(n=150, sensitive=sensitive, kinds={"ret": 3, "multi": 1})
    kinds = Counter()
    for s in samples:
        for _, answer, meta in _pairs(s):
            if meta["kind"] != "retrieval":
                continue
            gallery, q = from_search_call(
                answer["tool_calls"][0], images={"image_1": "the chat's first image"}, allow_sensitive=sensitive
            )
            kinds[q.kind] += 1
            assert gallery == "default" and 1 <= q.top_k <= 100
            if meta["call"] == "ret.id":
                assert q.face_id is not None and q.image is None and str(q.face_id) in _text(s["messages"][0])
            elif q.kind != "text":
                assert q.image == "the chat's first image" and q.face_id is None
            if meta["call"] == "ret.text":
                labels = records[s["record_ids"][0]]
                assert q.filters and all(labels.get(name) in values for name, values in q.filters.items())
    assert set(kinds) == {"text", "face", "composed"} and sum(kinds.values()) > 100, kinds


def test_sensitive_questions_only_when_enabled():
    off, _, _ = _generate(n=120)
    for s in off:
        for question, answer, meta in _pairs(s):
            assert meta.get("concept") not in ("age_group", "gender", "young", "skin_tone", "race", "pale_skin")
            assert not SENSITIVE_WORDS.search(_text(answer)), _text(answer)
            assert "older" not in question
    on, _, _ = _generate(n=120, sensitive=True)
    hedged = [_text(a) for s in on for q, a, m in _pairs(s) if m.get("concept") in ("age_group", "gender")]
    assert hedged and all(
        ("appear" in t or "apparent" in t) and ("estimate" in t or "appearance only" in t) for t in hedged
    ), hedged


def test_heldout_templates_are_disjoint_from_training():
    for kind, rows in TEMPLATES.items():  # every kind can be generated in both modes
        ids = [tid for tid, _ in rows]
        assert any(t in HELDOUT for t in ids) and any(t not in HELDOUT for t in ids), kind
    train, _, _ = _generate(n=150, sensitive=True)
    held, _, _ = _generate(n=150, sensitive=True, heldout=True)
    train_ids = {t["template"] for s in train for t in s["turns"]}
    held_ids = {t["template"] for s in held for t in s["turns"]}
    assert train_ids and held_ids and not (train_ids & HELDOUT) and held_ids <= HELDOUT
    train_q = {_text(s["messages"][i]) for s in train for i in range(0, len(s["messages"]), 2)}
    held_q = {_text(s["messages"][i]) for s in held for i in range(0, len(s["messages"]), 2)}
    assert not (train_q & held_q)  # not a single question string shared
    assert all(s["heldout"] for s in held)


def test_seeded_and_deterministic():
    a, _, _ = _generate(n=40, data_seed=2)
    b, _, _ = _generate(n=40, data_seed=2)
    c, _, _ = _generate(n=40, data_seed=2, seed=5)
    assert a == b and a != c


def test_qa_command_writes_jsonl(tmp_path):
    from PIL import Image

    from facevlm.data.cli import data
    from facevlm.data.store import save_records

    records = _records(8, seed=4)
    for r in records:
        r.image = Image.new("RGB", (32, 32), (100, 100, 100))
    save_records(records, tmp_path / "in")
    out = tmp_path / "qa.jsonl"
    result = CliRunner().invoke(data, ["qa", str(tmp_path / "in"), str(out), "--per-face", "2", "--heldout"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert 8 <= len(lines) <= 16 and f"{len(lines)} samples" in result.output
    assert all(t["template"] in HELDOUT for s in lines for t in s["turns"])


def test_templates_module_does_not_import_qa():
    """qa.py imports qa_templates.py, never the reverse (not even for type checking): one direction."""
    import ast
    import inspect

    from facevlm.data import qa, qa_templates

    def imports(module) -> set[str]:
        tree = ast.parse(inspect.getsource(module))
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        }

    assert "facevlm.data.qa_templates" in imports(qa)
    assert "facevlm.data.qa" not in imports(qa_templates)
