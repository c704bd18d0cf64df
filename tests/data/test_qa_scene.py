"""Photo-level QA samples: "no face visible" on face-free images, faces of group photos by position.

Positions are checked against an independent oracle (wording_checks.rank_by_x / said_positions), answers
against each named face's labels, face-free regions against every box of the photo, and the synthetic
backgrounds against the shipped face detector."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
from photo_fixtures import group, photo_set, single
from wording_checks import FACE_WORDS, confident, independent_violations, rank_by_x, said_positions

from facevlm.data.facts import check, extract_facts, find_claims
from facevlm.data.noface import BG, CROP, background_image, noface_ref, parse_ref
from facevlm.data.photos import face_free_box, photo_index, positions
from facevlm.data.qa import HELDOUT, KIND_WEIGHTS, QAConfig, qa_samples

NOFACE_ASKS = ("yn.", "open.", "accessories.", "describe.", "count.", "ident.")


@pytest.fixture(scope="module")
def synthetic():
    from facevlm.data.synth import SynthConfig, generate

    return list(generate(SynthConfig(n_identities=12, per_identity=2, seed=3), workers=1))


def _samples(records, **kw) -> tuple[list[dict], Counter]:
    stats: Counter = Counter()
    return list(qa_samples(records, QAConfig(**kw), stats, photo_index(records))), stats


def _text(message: dict) -> str:
    return " ".join(p["text"] for p in message.get("content") or [] if p["type"] == "text")


def _image(sample: dict) -> str:
    return next(p["image"] for p in sample["messages"][0]["content"] if p["type"] == "image")


def test_every_kind_appears_with_default_weights(synthetic):
    samples, stats = _samples(photo_set() + synthetic, per_face=4)
    assert set(KIND_WEIGHTS) <= set(stats), stats
    asks = Counter(t["asks"] for s in samples for t in s["turns"] if t["kind"] == "position")
    assert {"yes_no", "open", "which"} <= set(asks), asks
    blanks = Counter(_image(s).split(":", 1)[0] for s in samples if s["turns"][0]["kind"] == "noface")
    assert set(blanks) == {"bg", "nofacecrop"}, blanks
    assert stats["noface"] < stats["yn"] and stats["pos"] < stats["yn"]  # small weights: no flood


def test_position_answers_name_the_right_face_and_are_faithful():
    records = photo_set()
    by_id = {r.id: r for r in records}
    samples, _ = _samples(records, per_face=6, sensitive=True, kinds={"pos": 1})
    checked = Counter()
    for s in samples:
        (meta,) = s["turns"]
        if meta["kind"] != "position":
            continue
        faces = [r for r in records if r.image_key == by_id[s["record_ids"][0]].image_key]
        rank = dict(zip([r.id for r in faces], rank_by_x([r.box for r in faces])))
        question, answer = _text(s["messages"][0]), _text(s["messages"][1])
        assert _image(s) == f"full:{s['record_ids'][0]}"
        for rid in meta["about"]:  # every face the answer states something about, checked on its own labels
            facts, conflicted = extract_facts(by_id[rid].attributes, sensitive=True)
            assert check(answer, [], facts, conflicted=conflicted).ok, (question, answer)
            assert not independent_violations(answer, by_id[rid], True), (question, answer)
        if meta["asks"] == "which":
            said = said_positions(answer, len(faces))
            if answer.startswith(("Everyone", "No one")):
                assert not said
                named = list(rank) if answer.startswith("Everyone") else []
            else:
                named = [rid for rid in rank if rank[rid] in said]
                assert len(said) == len(set(said)) == len(meta["answer"]) == len(named) < len(faces)
            attr = {"smiling": "Smiling", "eyeglasses": "Eyeglasses"}.get(meta["concept"])
            if attr:  # named faces have it, the others do not (independent of facts.py)
                assert all(confident(by_id[r])[attr] == ("true" if r in named else "false") for r in rank), answer
        else:
            (me,) = meta["about"]
            assert me == s["record_ids"][0] == s["record_ids"][-1]
            assert said_positions(question, len(faces)) == [rank[me]] == said_positions(answer, len(faces))
            if meta["asks"] == "yes_no":
                assert answer.startswith("Yes" if meta["answer"] == "yes" else "No"), answer
        checked[meta["asks"]] += 1
    assert checked["yes_no"] > 40 and checked["open"] > 10 and checked["which"] > 3, checked


def test_positions_on_a_constructed_photo():
    def box(x):
        return [x, 0, x + 60, 70]

    three = positions([box(330), box(40), box(190)])
    assert three == ["person on the right", "person on the left", "person in the middle"]
    assert positions([box(300), box(60)]) == ["person on the right", "person on the left"]
    assert positions([box(20), box(130), box(240), box(350)]) == [
        f"{n} person from the left" for n in ("first", "second", "third", "fourth")
    ]
    assert positions([box(40), box(55), box(300)]) == [None, None, "person on the right"]  # 15 px apart: unordered
    assert positions([box(x) for x in range(0, 500, 100)]) == [None] * 5  # 5 faces: not referred to by position
    # through the sampler: each record of a 3-face photo given out of order is named by its own place
    records = group("p", [330, 40, 190])
    samples, _ = _samples(records, per_face=8, kinds={"pos": 1})
    where = {"p#0": "right", "p#1": "left", "p#2": "middle"}
    own = [s for s in samples if s["turns"][0]["asks"] != "which"]
    assert {s["record_ids"][0] for s in own} == set(where)
    assert all(where[s["record_ids"][0]] in s["turns"][0]["where"] for s in own)


def test_which_needs_every_face_labelled_and_in_the_split():
    mixed = group("m", [40, 190, 330], splits=["train", "dev", "train"])
    samples, stats = _samples(mixed, per_face=8, kinds={"pos": 1})
    assert stats["pos"] > 0 and all(s["turns"][0]["asks"] != "which" for s in samples)  # no dev labels in train
    partial = group("q", [40, 190], n_faces=3)  # a third face has no record: positions unknown
    assert photo_index(partial) == {}
    _, stats = _samples(partial, per_face=4, kinds={"pos": 1, "noface": 1})
    assert stats["pos"] == 0 and stats["noface"] == 0


def test_noface_answers_say_nothing_about_a_face(synthetic):
    samples, _ = _samples(photo_set() + synthetic, per_face=6, kinds={"noface": 1}, sensitive=True)
    assert len(samples) > 100
    asks = Counter()
    for s in samples:
        (meta,) = s["turns"]
        answer = _text(s["messages"][1])
        assert meta["kind"] == "noface" and meta["template"].startswith(NOFACE_ASKS)
        assert not find_claims(answer) and not FACE_WORDS.search(answer), answer
        assert re.search(r"\bno faces?\b|can't see|don't see", answer, re.I), answer
        assert "tool_calls" not in s["messages"][1]
        ref = _image(s)
        assert ref == f"{BG}{s['record_ids'][0]}" or (ref.startswith(CROP) and ref.endswith(f":{s['record_ids'][0]}"))
        asks[meta["asks"]] += 1
    assert set(asks) == {"yn", "open", "accessories", "describe", "count", "ident"}, asks


def test_face_free_regions_stay_clear_of_every_box():
    records = photo_set(3) + group("m", [40, 190, 330], splits=["train", "dev", "train"])
    photos = photo_index(records)
    for r in records:
        ref = noface_ref(r, photos.get(r.image_key))
        kind, rid, (x0, y0, x1, y1) = parse_ref(ref)
        assert kind == CROP and rid == r.id and x1 - x0 == y1 - y0 >= 64
        assert 0 <= x0 and 0 <= y0 and x1 <= r.image.size[0] and y1 <= r.image.size[1]
        for other in (o for o in records if o.image_key == r.image_key):  # all splits' faces
            bx0, by0, bx1, by1 = other.box
            assert x1 <= bx0 or x0 >= bx1 or y1 <= by0 or y0 >= by1
    assert face_free_box((100, 100), [[20, 20, 80, 80]]) is None  # a close-up: nowhere to go
    assert noface_ref(group("n", [40, 190, 330], n_faces=3)[0], None) is None  # boxes of the photo unknown


def test_seeded_per_record_id(synthetic):
    records = photo_set(3) + synthetic
    a, _ = _samples(records, per_face=3, kinds={"pos": 1, "noface": 1})
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    b, _ = _samples(shuffled, per_face=3, kinds={"pos": 1, "noface": 1})
    assert sorted(a, key=lambda s: s["id"]) == sorted(b, key=lambda s: s["id"]) and a != b
    first = [background_image(r).tobytes() for r in synthetic[:2]]
    assert first[0] == background_image(synthetic[0]).tobytes() and first[0] != first[1]
    assert background_image(synthetic[0]).size == synthetic[0].image.size


def test_heldout_templates_stay_disjoint(synthetic):
    records = photo_set(4) + synthetic
    train, _ = _samples(records, per_face=6, kinds={"pos": 1, "noface": 1}, sensitive=True)
    held, _ = _samples(records, per_face=6, kinds={"pos": 1, "noface": 1}, sensitive=True, heldout=True)
    train_ids = {t["template"] for s in train for t in s["turns"]}
    held_ids = {t["template"] for s in held for t in s["turns"]}
    assert any(t.startswith("pos.which") for t in held_ids) and any(t.startswith("pos.") for t in train_ids)
    assert not (train_ids & HELDOUT) and held_ids <= HELDOUT
    assert not ({_text(s["messages"][0]) for s in train} & {_text(s["messages"][0]) for s in held})


def test_synthetic_backgrounds_contain_no_face(synthetic, assets_home):
    """The shipped detector, which finds the rendered faces, finds nothing in their backgrounds."""
    from facevlm.vision.detect import DetectorConfig, FaceDetector

    detector = FaceDetector(DetectorConfig(landmarks=False, min_confidence=0.3))
    on_faces = detector.screen_batch([r.image for r in synthetic])
    on_backgrounds = detector.screen_batch([background_image(r) for r in synthetic])
    assert sum(s.n_faces > 0 for s in on_faces) >= 6  # not a blind detector
    assert all(s.n_faces == 0 for s in on_backgrounds)
    assert single("s").box and noface_ref(synthetic[0]) == f"{BG}{synthetic[0].id}"
