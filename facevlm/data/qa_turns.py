"""What a face QA turn answers: one builder per question kind, each answer phrased and checked.

One function per question kind turns a face's confident facts (facts.py) into one `Turn` (question +
answer); the questions come from qa_templates.py, and qa.py decides which kinds to ask, pairs faces and
assembles turns into chat samples. Every answer is re-checked against the facts it came from before it
is returned (None otherwise), so an answer can never contradict its labels. Yes/no questions choose
their polarity first, so yes and no are balanced; apparent age and other sensitive concepts carry a
caveat (CAVEAT); "Who is this?" is answered with a gallery search, never a name. Yes/no and open
questions are split into a plan (which fact) and one builder (`yes_no`, `open_turn`) whose `where` asks
the same of one face of a group photo by its position (qa_scene.py). This module never imports qa.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from facevlm.data.caption import (
    WEAR,
    CaptionConfig,
    build_caption,
    clause,
    join_phrases,
    merge_clauses,
    piece_for,
    plural_vp,
)
from facevlm.data.facts import Fact, check, find_claims, phrases
from facevlm.data.lexicon import BINARY, LEXICON
from facevlm.data.qa_templates import (
    TEMPLATES,
    UNASKED,
    Asking,
    open_question_text,
    pick_template,
    yes_no_question,
)
from facevlm.data.search_call import SearchCall
from facevlm.schema import FaceRecord

# what an answer about a sensitive concept adds: it is an estimate of appearance, not a fact
CAVEAT = {
    "age_group": "Apparent age from a photo is only an estimate.",
    "young": "Apparent age is only an estimate.",
    "gender": "This describes appearance only, not the person's gender identity.",
    "skin_tone": "This is an estimate that depends on the photo and lighting.",
    "pale_skin": "This is an estimate that depends on the photo and lighting.",
    "race": "This is a perceived category, not a fact about the person.",
}
NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@dataclass
class Face:
    """A record with its facts, as the generators need it."""

    record: FaceRecord
    facts: list[Fact]
    conflicted: set[str]
    hedge: bool = True

    def known(self, concept: str) -> Fact | None:
        return next((f for f in self.facts if f.concept == concept), None)


@dataclass
class Turn:
    """One question and its answer: text, or a `face_search` call (with `prefix` said before it).
    `meta` (template id, kind, concept, expected answer) is kept in the sample for evaluation."""

    question: str
    answer: str | SearchCall
    meta: dict[str, Any]
    prefix: str = ""  # text said before a tool call


def as_asked(concept: str, value: str, fact: Fact) -> Fact:
    """`fact`'s concept asked about as the positive `value` (same origin and sensitivity)."""
    return Fact(concept, value, True, fact.origin, fact.prob, fact.sensitive, fact.attribute)


def faithful(text: str, required: list[Fact], face: Face) -> bool:
    """The fact check of every answer: `required` stated, nothing contradicting `face`'s labels."""
    return check(text, required, face.facts, conflicted=face.conflicted).ok


def with_caveat(text: str, fact: Fact) -> str:
    return f"{text} {CAVEAT[fact.concept]}" if fact.sensitive else text


_SINGULAR = {"are": "is", "have": "has", "do": "does", "seem": "seems", "appear": "appears"}


def with_subject(body: str, subject: str) -> str:
    """A "they ..." clause (caption.clause) said of another subject: "the person on the left is smiling"
    (a plural subject, "the person on the left and the person on the right", keeps the plural verb)."""
    if subject == "they" or not body.startswith("they "):
        return body
    verb, _, rest = body[len("they ") :].partition(" ")
    plural = " and " in subject
    return f"{subject} {verb if plural else _SINGULAR.get(verb, verb)} {rest}".rstrip()


def yes_no_plan(face: Face, rng: random.Random) -> tuple[bool, Fact, Fact] | None:
    """Polarity first (balanced), then (yes, asked positive-phrased fact, the fact that answers it)."""
    yes = rng.random() < 0.5
    options: list[tuple[Fact, Fact]] = []  # (asked positive-phrased fact, the fact that answers it)
    for f in face.facts:
        if f.concept in UNASKED:
            continue
        kind = LEXICON[f.concept][0]
        if kind == BINARY:
            if (f.value == "true") == yes and phrases(as_asked(f.concept, "true", f))[0]:
                options.append((as_asked(f.concept, "true", f), f))
        elif f.positive and yes and f.stated:
            options.append((f, f))
        elif not yes:
            others = [v for v in LEXICON[f.concept][1] if (v != f.value) == f.positive and LEXICON[f.concept][1][v][0]]
            options += [(as_asked(f.concept, v, f), f) for v in others]
    if not options:
        return None
    asked, fact = rng.choice(options)
    return yes, asked, fact


def yes_no_answer(
    face: Face, yes: bool, asked: Fact, fact: Fact, rng: random.Random, subject: str = "they"
) -> tuple[str, list[Fact]]:
    """ "Yes, <subject> is smiling." and the facts it must state (`subject` as in `with_subject`)."""
    if yes:
        body = clause(asked, rng, hedge=face.hedge)
        required = [fact]
    elif fact.positive and fact.value != asked.value and LEXICON[fact.concept][0] != BINARY and fact.stated:
        body = clause(fact, rng, hedge=face.hedge)  # "No, they have brown hair."
        required = [fact]
    else:
        body = clause(asked, rng, negate=True, hedge=face.hedge)
        required = []
    return with_caveat(f"{'Yes' if yes else 'No'}, {with_subject(body, subject)}.", fact), required


def _subject(where: str = "") -> str:
    """Who an answer speaks of: "they" (the one face of the image), or the face at position `where`."""
    return f"the {where}" if where else "they"


def yes_no(face: Face, cfg: Asking, rng: random.Random, where: str = "") -> Turn | None:
    """A yes/no question about `face` and its checked answer. `where` (a photos.POSITIONS phrase) asks it of
    the face at that position of a group photo instead, in the same words and with the same check
    ("Is the person on the left smiling?" -> "Yes, the person on the left is smiling."; qa_scene.py)."""
    plan = yes_no_plan(face, rng)
    if plan is None:
        return None
    yes, asked, fact = plan
    tid, question = yes_no_question(asked, cfg, rng, where=where)
    answer, required = yes_no_answer(face, yes, asked, fact, rng, subject=_subject(where))
    if not faithful(answer, required, face):
        return None
    return Turn(
        question,
        answer,
        {
            "template": tid,
            "kind": "yes_no",
            "concept": asked.concept,
            "value": asked.value,
            "answer": "yes" if yes else "no",
        },
    )


def open_plan(face: Face, rng: random.Random, concepts: frozenset[str] | None = None) -> Fact | None:
    """A stated fact with an open question (of `concepts` only, when given)."""
    facts = [
        f
        for f in face.facts
        if f.stated and f"open.{f.concept}" in TEMPLATES and (concepts is None or f.concept in concepts)
    ]
    return rng.choice(facts) if facts else None


def open_answer(face: Face, fact: Fact, rng: random.Random, subject: str = "they") -> str:
    body = with_subject(clause(fact, rng, hedge=face.hedge), subject)
    return with_caveat(body[0].upper() + body[1:] + ".", fact)


def open_turn(face: Face, fact: Fact, cfg: Asking, rng: random.Random, where: str = "") -> Turn | None:
    """The open question asking for `fact` (from `open_plan`) and its checked answer; `where` as in `yes_no`."""
    tid, question = open_question_text(fact.concept, cfg, rng, where=where)
    answer = open_answer(face, fact, rng, subject=_subject(where))
    if not faithful(answer, [fact], face):
        return None
    return Turn(question, answer, {"template": tid, "kind": "open", "concept": fact.concept, "answer": fact.value})


def open_question(face: Face, cfg: Asking, rng: random.Random) -> Turn | None:
    fact = open_plan(face, rng)
    return open_turn(face, fact, cfg, rng) if fact is not None else None


def accessories(face: Face, cfg: Asking, rng: random.Random) -> Turn | None:
    worn = [f for f in face.facts if f.concept in WEAR and f.value == "true"]
    absent = [
        as_asked(f.concept, "true", f)
        for f in face.facts
        if f.concept in WEAR and f.value == "false" and phrases(as_asked(f.concept, "true", f))[0]
    ]
    if not worn and len(absent) < 2:
        return None
    tid, question = pick_template("accessories", cfg, rng)
    hedged = [f for f in worn if face.hedge and f.origin == "pseudo"]
    plain = [piece_for(f, rng).comp for f in worn if f not in hedged]
    parts = [f"they are wearing {join_phrases(plain, rng)}"] if plain else []
    if hedged:
        parts.append(
            f"they {'also ' if plain else ''}seem to be wearing "
            f"{join_phrases([piece_for(f, rng).comp for f in hedged], rng)}"
        )
    if worn:
        answer = "; ".join(parts) + "."
    else:  # "they are not wearing glasses or a hat": one negated clause lists absences
        comps = [piece_for(f, rng).comp for f in absent[:3]]
        answer = f"They are not wearing {', '.join(comps[:-1])} or {comps[-1]}."
    answer = answer[0].upper() + answer[1:]
    if not faithful(answer, worn, face):  # the absences are checked too: they must read as negated
        return None
    return Turn(question, answer, {"template": tid, "kind": "accessories", "answer": sorted(f.concept for f in worn)})


def describe(face: Face, cfg: Asking, rng: random.Random) -> Turn | None:
    tid, question = pick_template("describe", cfg, rng)
    text, used = build_caption(face.facts, CaptionConfig(sensitive=cfg.sensitive, hedge_pseudo=face.hedge), rng)
    if not used or not faithful(text, used, face):  # "Someone." is no description
        return None
    return Turn(question, text, {"template": tid, "kind": "describe"})


def count(face: Face, cfg: Asking, rng: random.Random) -> Turn | None:
    n = face.record.n_faces
    if n < 1:
        return None
    tid, question = pick_template("count", cfg, rng)
    word = NUMBERS[n] if n < len(NUMBERS) else str(n)
    answer = "There is one face in this photo." if n == 1 else f"There are {word} faces in this photo."
    return Turn(question, answer, {"template": tid, "kind": "count", "answer": n, "image": "full"})


def _search(
    kind: str,
    cfg: Asking,
    rng: random.Random,
    query: dict[str, Any],
    c: str = "",
    top_k: int = 10,
    filters: dict[str, Any] | None = None,
) -> Turn:
    tid, text = pick_template(kind, cfg, rng)
    if "{k}" in text:
        top_k = rng.choice([3, 5, 10, 20])
    call = SearchCall.parse({"query": query, "top_k": top_k, "filters": filters or {}}, allow_sensitive=cfg.sensitive)
    prefix = (
        "I can't tell who someone is from their face, but I can look for this face in your gallery."
        if kind == "ident"
        else ""
    )
    return Turn(text.format(c=c, k=top_k), call, {"template": tid, "kind": "retrieval", "call": kind}, prefix)


RETRIEVAL_KINDS = ("ret.same", "ident", "ret.alike", "ret.text", "ret.edit", "ret.editalike", "ret.id")
# Training draws "who is this?" twice as often: the no-face samples ask it too (answered "no face"), and a
# small model that half-sees the picture must not learn "identity question -> no face" (docs/vlm.md).
# Held-out sets (the search_call benchmark) draw every kind equally.
TRAIN_WEIGHTS = tuple(2 if k == "ident" else 1 for k in RETRIEVAL_KINDS)


def retrieval(face: Face, cfg: Asking, rng: random.Random) -> Turn | None:
    if cfg.heldout:
        kind = rng.choice(RETRIEVAL_KINDS)
    else:
        kind = rng.choices(RETRIEVAL_KINDS, TRAIN_WEIGHTS)[0]
    me = {"image": "image_1"}
    if kind in ("ret.same", "ident"):
        return _search(kind, cfg, rng, {"face": me, "match": "same_person"})
    if kind == "ret.alike":
        return _search(kind, cfg, rng, {"face": me, "match": "look_alike"})
    if kind == "ret.id":
        # gallery face ids are SQLite row ids (index/store.py), so the VLM sees decimal ids of any length
        fid = str(rng.randint(1, rng.choice([99, 9_999, 999_999])))
        return _search(kind, cfg, rng, {"face": {"face_id": fid}, "match": "same_person"}, c=fid)
    usable = [
        f
        for f in face.facts
        if f.stated
        and f.value != "false"
        and f.attribute
        and f.concept not in UNASKED
        and f.attribute not in ("age", "yaw", "pitch", "roll")
        and (cfg.sensitive or not f.sensitive)
    ]
    if kind == "ret.text":
        if not usable:
            return None
        chosen = rng.sample(usable, min(len(usable), rng.randint(1, 3)))
        pieces = [piece_for(f, rng) for f in chosen]
        who = "who " + join_phrases([plural_vp(v) for v in merge_clauses(pieces, rng)], rng)
        nps = [p.np for p in pieces if p.slot != "pred"]
        text = " ".join(
            ["a person"]
            + ([f"with {join_phrases(nps, rng)}"] if nps else [])
            + [p.np for p in pieces if p.slot == "pred"]
        )
        filters = {f.attribute: _label_value(face, f.attribute) for f in chosen}
        return _search(kind, cfg, rng, {"text": text}, c=who, filters=filters)
    edits = [f for f in _edit_candidates(face) if cfg.sensitive or not f.sensitive]
    if not edits:
        return None
    p = piece_for(rng.choice(edits), rng)
    edit = {"is": p.comp, "is wearing": f"wearing {p.comp}", "has": f"with {p.comp}"}.get(p.verb)
    if edit is None:
        return None
    match = "same_person" if kind == "ret.edit" else "look_alike"
    return _search(kind, cfg, rng, {"face": me, "edit": edit, "match": match}, c=edit)


def _label_value(face: Face, attribute: str) -> Any:
    value = face.record.get(attribute)
    return {"true": True, "false": False}.get(value, value)


def _edit_candidates(face: Face) -> list[Fact]:
    """Changes that are real changes: a binary attribute the face lacks, or another hair colour."""
    out = [
        Fact(f.concept, "true", True, "gt", 1.0, f.sensitive, f.attribute)
        for f in face.facts
        if LEXICON[f.concept][0] == BINARY and f.value == "false"
    ]
    hair = face.known("hair_colour")
    if hair is not None and hair.positive:
        out += [Fact("hair_colour", v, True) for v in ("blond", "black", "brown", "gray") if v != hair.value]
    return [f for f in out if phrases(f)[0]]


def _segments_ok(answer: str, a: Face, b: Face, required: tuple[list[Fact], ...]) -> bool:
    """Two-image answers say "First image: ... Second image: ..."; each part is checked against its face."""
    head, _, rest = answer.partition("First image:")
    first, _, second = rest.partition("Second image:")
    return not find_claims(head) and faithful(first, required[0], a) and faithful(second, required[1], b)


def compare(a: Face, b: Face, cfg: Asking, rng: random.Random) -> Turn | None:
    """Two faces: same identity? both with X? who looks older (sensitive only)?"""
    kinds = ["cmp.same"] if a.record.identity and b.record.identity else []
    shared = [
        (fa, fb)
        for fa in a.facts
        if LEXICON[fa.concept][0] == BINARY
        and (fa.concept in WEAR or fa.concept == "smiling")
        and (fb := b.known(fa.concept)) is not None
    ]
    kinds += ["cmp.both"] if shared else []
    ages = (a.known("age_group"), b.known("age_group"))
    if ages[0] and ages[1] and ages[0].positive and ages[1].positive and ages[0].value != ages[1].value:
        kinds.append("cmp.older")
    if not kinds:
        return None
    kind = rng.choice(kinds)
    tid, text = pick_template(kind, cfg, rng)
    meta: dict[str, Any] = {"template": tid, "kind": "compare"}
    if kind == "cmp.same":
        same = a.record.identity == b.record.identity
        answer = "Yes, these appear to be the same person." if same else "No, these appear to be two different people."
        return Turn(text, answer, {**meta, "answer": "yes" if same else "no"})
    if kind == "cmp.both":
        pair = rng.choice(shared)
        both = all(f.value == "true" for f in pair)
        says = [
            clause(as_asked(f.concept, "true", f), rng, negate=f.value == "false", hedge=face.hedge)
            for f, face in zip(pair, (a, b))
        ]
        answer = f"{'Yes' if both else 'No'}. First image: {says[0]}. Second image: {says[1]}."
        p = piece_for(as_asked(pair[0].concept, "true", pair[0]), rng)
        ok = _segments_ok(answer, a, b, tuple([f] if f.value == "true" else [] for f in pair))
        question = text.format(c=p.comp if p.verb == "is" else f"wearing {p.comp}")
        return (
            Turn(question, answer, {**meta, "concept": pair[0].concept, "answer": "yes" if both else "no"})
            if ok
            else None
        )
    age_a, age_b = ages[0], ages[1]
    assert age_a is not None and age_b is not None
    older_first = _age_rank(age_a) > _age_rank(age_b)
    answer = (
        f"The person in the {'first' if older_first else 'second'} image looks older. "
        f"First image: {clause(age_a, rng)}. Second image: {clause(age_b, rng)}."
    )
    if not _segments_ok(answer, a, b, ([age_a], [age_b])):
        return None
    return Turn(text, f"{answer} {CAVEAT['age_group']}", {**meta, "answer": "first" if older_first else "second"})


def _age_rank(f: Fact) -> int:
    return list(LEXICON["age_group"][1]).index(f.value)
