"""Face question-answer chat samples from attribute facts, for tuning the VLM (OpenAI-style messages).

Every answer is generated from confident facts (facts.py) and re-checked against them before it is
kept, so an answer can never contradict the labels it came from. Kinds: yes/no attribute questions
(polarity chosen first, so yes and no are balanced), open attribute questions, expression, apparent age
(sensitive: only when enabled, always hedged), accessories, a full description (a grammar caption),
face counting, two-image comparisons, and retrieval requests whose answer is a `face_search` tool call
(search_call.py). Identity questions ("Who is this?") are answered with a gallery search, never a
name. Each question template has an id; HELDOUT ids are never used for training samples and are the
only ones used with `heldout=True`, so evaluation measures generalisation to unseen phrasings.

Image references in content parts: "<record id>" (that face's crop) and "full:<record id>" (the whole
source image of that record, for counting); the exporter resolves them. Samples are seeded per record id.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import click

from facevlm.data.caption import CaptionConfig, build_caption, piece_for, record_rng
from facevlm.data.facts import DEFAULT_THRESHOLD, LEXICON, Fact, check, extract_facts, phrases
from facevlm.data.schema import FaceRecord
from facevlm.data.search_call import SearchCall
from facevlm.errors import FacevlmError

T = dict[str, list[tuple[str, str]]]  # kind -> [(template id, text)]
TEMPLATES: T = {
    "yn.is wearing": [("yn.wear.1", "Is this person wearing {c}?"), ("yn.wear.2", "Are they wearing {c}?"),
                      ("yn.wear.h1", "Does the person in this photo have {c} on?")],
    "yn.has": [("yn.has.1", "Does this person have {c}?"), ("yn.has.2", "Do they have {c}?"),
               ("yn.has.h1", "Can you see {c} on this face?")],
    "yn.is": [("yn.is.1", "Is this person {c}?"), ("yn.is.2", "Are they {c}?"),
              ("yn.is.h1", "Would you say this person is {c}?")],
    "yn.appears to be": [("yn.app.1", "Does this person appear to be {c}?"), ("yn.app.h1", "Would you guess they are {c}?")],
    "yn.expr": [("yn.expr.1", "Does this person look {c}?"), ("yn.expr.2", "Are they {c}?"),
                ("yn.expr.h1", "Is the person in the photo {c}?")],
    "open.hair_colour": [("open.hair.1", "What colour is this person's hair?"), ("open.hair.2", "What is their hair colour?"),
                         ("open.hair.h1", "Describe the colour of their hair.")],
    "open.hair_length": [("open.len.1", "How long is their hair?"), ("open.len.h1", "What length is this person's hair?")],
    "open.expression": [("expr.1", "What expression does this person have?"), ("expr.2", "How does this person seem to feel?"),
                        ("expr.3", "What emotion does this face show?"), ("expr.h1", "Which facial expression can you see?")],
    "open.age_group": [("age.1", "How old does this person look?"),
                       ("age.2", "What age group does this person appear to belong to?"),
                       ("age.h1", "Roughly how old would you guess they are?")],
    "open.gender": [("gender.1", "How would you describe this person's apparent gender presentation?"),
                    ("gender.h1", "Does this person present as feminine or masculine?")],
    "open.head_turn": [("pose.1", "Which way is their head turned?"), ("pose.h1", "Is this person facing the camera or turned away?")],
    "accessories": [("acc.1", "What is this person wearing on their face or head?"), ("acc.2", "Are they wearing any accessories?"),
                    ("acc.h1", "List the accessories you can see on this person.")],
    "describe": [("desc.1", "Describe this person's face."), ("desc.2", "What does this person look like?"),
                 ("desc.3", "Give a short description of the face in this photo."),
                 ("desc.h1", "Write one sentence describing this face.")],
    "count": [("count.1", "How many faces are in this photo?"), ("count.2", "How many people can you see in this picture?"),
              ("count.h1", "Count the faces in this image.")],
    "cmp.same": [("cmp.same.1", "Are these two photos of the same person?"), ("cmp.same.2", "Do these images show the same person?"),
                 ("cmp.same.h1", "Is the person in the first photo also in the second one?")],
    "cmp.both": [("cmp.both.1", "Are both of these people {c}?"), ("cmp.both.h1", "Is each person in these photos {c}?")],
    "cmp.older": [("cmp.older.1", "Which of these two people looks older?"),
                  ("cmp.older.h1", "Who looks older: the person in the first photo or the second?")],
    "ret.same": [("ret.same.1", "Find more photos of this person in my gallery."),
                 ("ret.same.2", "Search my gallery for other pictures of this person."),
                 ("ret.same.h1", "Can you look for this person in my photos?")],
    "ident": [("ident.1", "Who is this?"), ("ident.2", "What is this person's name?"),
              ("ident.h1", "Do you know who this person is?")],
    "ret.alike": [("ret.alike.1", "Find people who look like this person in my gallery."),
                  ("ret.alike.h1", "Show me faces in my gallery that resemble this one.")],
    "ret.text": [("ret.text.1", "Find people {c} in my gallery."), ("ret.text.2", "Show me the top {k} photos of people {c}."),
                 ("ret.text.h1", "Search my gallery for anyone {c}.")],
    "ret.edit": [("ret.edit.1", "Find photos of this person {c}."), ("ret.edit.2", "Show me this person {c}, from my gallery."),
                 ("ret.edit.h1", "Are there pictures of this person {c} in my gallery?")],
    "ret.editalike": [("ret.editalike.1", "Find people who look like this but {c}."),
                      ("ret.editalike.h1", "Search for look-alikes of this face, {c}.")],
    "ret.id": [("ret.id.1", "Find more photos of gallery face {c}."),
               ("ret.id.h1", "Show me other pictures of the person with face id {c}.")],
}
HELDOUT = frozenset(tid for rows in TEMPLATES.values() for tid, _ in rows if tid.rsplit(".", 1)[-1].startswith("h"))
EXPR_ADJ = {"neutral": "neutral", "happy": "happy", "sad": "sad", "surprise": "surprised", "anger": "angry",
            "disgust": "disgusted", "fear": "afraid"}
CAVEAT = {"age_group": "Apparent age from a photo is only an estimate.", "young": "Apparent age is only an estimate.",
          "gender": "This describes appearance only, not the person's gender identity.",
          "skin_tone": "This is an estimate that depends on the photo and lighting.",
          "pale_skin": "This is an estimate that depends on the photo and lighting.",
          "race": "This is a perceived category, not a fact about the person."}
NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
# (plural verb, negated, hedged, hedged negated) per singular verb of caption.Piece
VERBS = {"is": ("are", "are not", "seem to be", "do not seem to be"),
         "is wearing": ("are wearing", "are not wearing", "seem to be wearing", "do not seem to be wearing"),
         "has": ("have", "do not have", "seem to have", "do not seem to have"),
         "appears to be": ("appear to be", "do not appear to be", "appear to be", "do not appear to be")}
UNASKED = frozenset({"race", "skin_tone", "blurry"})  # said as notes in captions, not asked about
KIND_WEIGHTS = {"yn": 5, "open": 3, "accessories": 1, "describe": 2, "count": 1, "cmp": 2, "ret": 2, "multi": 2}


@dataclass
class QAConfig:
    per_face: int = 4
    threshold: float = DEFAULT_THRESHOLD
    sensitive: bool = False
    heldout: bool = False  # evaluation: only held-out templates
    pair_buffer: int = 256  # recent faces kept to build two-image questions
    seed: int = 0
    kinds: dict[str, int] = field(default_factory=lambda: dict(KIND_WEIGHTS))

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KIND_WEIGHTS)
        if unknown or self.per_face < 1:
            raise FacevlmError(f"qa: per_face must be >= 1 and kinds among {', '.join(KIND_WEIGHTS)}")


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
    question: str
    answer: str | SearchCall
    meta: dict[str, Any]
    prefix: str = ""  # text said before a tool call


def _template(kind: str, cfg: QAConfig, rng: random.Random) -> tuple[str, str]:
    rows = [r for r in TEMPLATES[kind] if (r[0] in HELDOUT) == cfg.heldout]
    return rng.choice(rows)


def clause(fact: Fact, rng: random.Random, negate: bool = False, hedge: bool = False) -> str:
    """"they are wearing glasses" / "they do not seem to have a beard" for a positive-phrased fact."""
    p = piece_for(fact, rng)
    plural, neg, hplural, hneg = VERBS[p.verb]
    if hedge and fact.origin == "pseudo" and not fact.sensitive:
        return f"they {hneg if negate else hplural} {p.comp}"
    return f"they {neg if negate else plural} {p.comp}"


def _asked(concept: str, value: str, fact: Fact) -> Fact:
    return Fact(concept, value, True, fact.origin, fact.prob, fact.sensitive, fact.attribute)


def _ok(text: str, required: list[Fact], face: Face) -> bool:
    return check(text, required, face.facts, conflicted=face.conflicted).ok


def _with_caveat(text: str, fact: Fact) -> str:
    return f"{text} {CAVEAT[fact.concept]}" if fact.sensitive else text


def yes_no(face: Face, cfg: QAConfig, rng: random.Random) -> Turn | None:
    """Polarity first (balanced), then a fact that answers it."""
    yes = rng.random() < 0.5
    options: list[tuple[Fact, Fact]] = []  # (asked positive-phrased fact, the fact that answers it)
    for f in face.facts:
        if f.concept in UNASKED:
            continue
        kind = LEXICON[f.concept][0]
        if kind == "binary":
            if (f.value == "true") == yes and phrases(_asked(f.concept, "true", f))[0]:
                options.append((_asked(f.concept, "true", f), f))
        elif f.positive and yes and f.stated:
            options.append((f, f))
        elif not yes:
            others = [v for v in LEXICON[f.concept][1] if (v != f.value) == f.positive and LEXICON[f.concept][1][v][0]]
            options += [(_asked(f.concept, v, f), f) for v in others]
    if not options:
        return None
    asked, fact = rng.choice(options)
    p = piece_for(asked, rng)
    kind = "yn.expr" if asked.concept == "expression" else f"yn.{p.verb}"
    tid, text = _template(kind, cfg, rng)
    question = text.format(c=EXPR_ADJ[asked.value] if kind == "yn.expr" else p.comp)
    if yes:
        body = clause(asked, rng, hedge=face.hedge)
        required = [fact]
    elif fact.positive and fact.value != asked.value and LEXICON[fact.concept][0] != "binary" and fact.stated:
        body = clause(fact, rng, hedge=face.hedge)  # "No, they have brown hair."
        required = [fact]
    else:
        body = clause(asked, rng, negate=True, hedge=face.hedge)
        required = []
    answer = _with_caveat(f"{'Yes' if yes else 'No'}, {body}.", fact)
    if not _ok(answer, required, face):
        return None
    return Turn(question, answer, {"template": tid, "kind": "yes_no", "concept": asked.concept,
                                   "value": asked.value, "answer": "yes" if yes else "no"})


def open_question(face: Face, cfg: QAConfig, rng: random.Random) -> Turn | None:
    facts = [f for f in face.facts if f.stated and f"open.{f.concept}" in TEMPLATES]
    if not facts:
        return None
    fact = rng.choice(facts)
    tid, question = _template(f"open.{fact.concept}", cfg, rng)
    body = clause(fact, rng, hedge=face.hedge)
    answer = _with_caveat(body[0].upper() + body[1:] + ".", fact)
    if not _ok(answer, [fact], face):
        return None
    return Turn(question, answer, {"template": tid, "kind": "open", "concept": fact.concept, "answer": fact.value})


def accessories(face: Face, cfg: QAConfig, rng: random.Random) -> Turn | None:
    from facevlm.data.caption import WEAR

    worn = [f for f in face.facts if f.concept in WEAR and f.value == "true"]
    absent = [_asked(f.concept, "true", f) for f in face.facts if f.concept in WEAR and f.value == "false"
              and phrases(_asked(f.concept, "true", f))[0]]
    if not worn and len(absent) < 2:
        return None
    tid, question = _template("accessories", cfg, rng)
    parts = [clause(f, rng, hedge=face.hedge) for f in worn]
    if worn:
        answer = "; ".join(parts) + "."
    else:  # "they are not wearing glasses or a hat": one negated clause lists absences
        comps = [piece_for(f, rng).comp for f in absent[:3]]
        answer = f"They are not wearing {', '.join(comps[:-1])} or {comps[-1]}."
    answer = answer[0].upper() + answer[1:]
    if not _ok(answer, worn, face):  # the absences are checked too: they must read as negated
        return None
    return Turn(question, answer, {"template": tid, "kind": "accessories",
                                   "answer": sorted(f.concept for f in worn)})


def describe(face: Face, cfg: QAConfig, rng: random.Random) -> Turn | None:
    tid, question = _template("describe", cfg, rng)
    text, used = build_caption(face.facts, CaptionConfig(seed=cfg.seed, sensitive=cfg.sensitive), rng)
    if not _ok(text, used, face):
        return None
    return Turn(question, text, {"template": tid, "kind": "describe"})


def count(face: Face, cfg: QAConfig, rng: random.Random) -> Turn | None:
    n = face.record.n_faces
    if n < 1:
        return None
    tid, question = _template("count", cfg, rng)
    word = NUMBERS[n] if n < len(NUMBERS) else str(n)
    answer = f"There is one face in this photo." if n == 1 else f"There are {word} faces in this photo."
    return Turn(question, answer, {"template": tid, "kind": "count", "answer": n, "image": "full"})


def _search(kind: str, cfg: QAConfig, rng: random.Random, query: dict[str, Any], c: str = "",
            top_k: int = 10, filters: dict[str, Any] | None = None) -> Turn:
    tid, text = _template(kind, cfg, rng)
    if "{k}" in text:
        top_k = rng.choice([3, 5, 10, 20])
    call = SearchCall.parse({"query": query, "top_k": top_k, "filters": filters or {}}, allow_sensitive=cfg.sensitive)
    prefix = ("I can't tell who someone is from their face, but I can look for this face in your gallery."
              if kind == "ident" else "")
    return Turn(text.format(c=c, k=top_k), call, {"template": tid, "kind": "retrieval", "call": kind}, prefix)


def retrieval(face: Face, cfg: QAConfig, rng: random.Random) -> Turn | None:
    kind = rng.choice(["ret.same", "ident", "ret.alike", "ret.text", "ret.edit", "ret.editalike", "ret.id"])
    me = {"image": "image_1"}
    if kind in ("ret.same", "ident"):
        return _search(kind, cfg, rng, {"face": me, "match": "same_person"})
    if kind == "ret.alike":
        return _search(kind, cfg, rng, {"face": me, "match": "look_alike"})
    if kind == "ret.id":
        fid = f"{rng.getrandbits(40):010x}"
        return _search(kind, cfg, rng, {"face": {"face_id": fid}, "match": "same_person"}, c=fid)
    usable = [f for f in face.facts if f.stated and f.value != "false" and f.attribute and f.concept not in UNASKED
              and f.attribute not in ("age", "yaw", "pitch", "roll") and (cfg.sensitive or not f.sensitive)]
    if kind == "ret.text":
        if not usable:
            return None
        chosen = rng.sample(usable, min(len(usable), rng.randint(1, 3)))
        pieces = [piece_for(f, rng) for f in chosen]
        who = "who " + " and ".join(clause(f, rng)[5:] for f in chosen)  # drop "they "
        text = "a person " + ("with " + " and ".join(p.np for p in pieces if p.slot != "pred")
                              if any(p.slot != "pred" for p in pieces) else "")
        text = (text + " " + " ".join(p.np for p in pieces if p.slot == "pred")).strip()
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
    out = [Fact(f.concept, "true", True, "gt", 1.0, f.sensitive, f.attribute) for f in face.facts
           if LEXICON[f.concept][0] == "binary" and f.value == "false"]
    hair = face.known("hair_colour")
    if hair is not None and hair.positive:
        out += [Fact("hair_colour", v, True) for v in ("blond", "black", "brown", "gray") if v != hair.value]
    return [f for f in out if phrases(f)[0]]


def _segments_ok(answer: str, a: Face, b: Face, required: tuple[list[Fact], list[Fact]]) -> bool:
    """Two-image answers say "First image: ... Second image: ..."; each part is checked against its face."""
    head, _, rest = answer.partition("First image:")
    first, _, second = rest.partition("Second image:")
    return (not find_any(head) and _ok(first, required[0], a) and _ok(second, required[1], b))


def find_any(text: str) -> bool:
    from facevlm.data.facts import find_claims

    return bool(find_claims(text))


def compare(a: Face, b: Face, cfg: QAConfig, rng: random.Random) -> Turn | None:
    """Two faces: same identity? both with X? who looks older (sensitive only)?"""
    from facevlm.data.caption import WEAR

    kinds = []
    if a.record.identity and b.record.identity:
        kinds.append("cmp.same")
    shared = [(fa, b.known(fa.concept)) for fa in a.facts if LEXICON[fa.concept][0] == "binary"
              and b.known(fa.concept) is not None and (fa.concept in WEAR or fa.concept == "smiling")]
    if shared:
        kinds.append("cmp.both")
    age_a, age_b = a.known("age_group"), b.known("age_group")
    if age_a and age_b and age_a.positive and age_b.positive and age_a.value != age_b.value:
        kinds.append("cmp.older")
    if not kinds:
        return None
    kind = rng.choice(kinds)
    tid, text = _template(kind, cfg, rng)
    if kind == "cmp.same":
        same = a.record.identity == b.record.identity
        answer = ("Yes, these appear to be the same person." if same
                  else "No, these appear to be two different people.")
        return Turn(text, answer, {"template": tid, "kind": "compare", "answer": "yes" if same else "no"})
    if kind == "cmp.both":
        fa, fb = rng.choice(shared)
        asked = _asked(fa.concept, "true", fa)
        p = piece_for(asked, rng)
        both = fa.value == "true" and fb.value == "true"  # type: ignore[union-attr]
        sa = clause(_asked(fa.concept, "true", fa), rng, negate=fa.value == "false", hedge=a.hedge)
        sb = clause(_asked(fb.concept, "true", fb), rng, negate=fb.value == "false", hedge=b.hedge)  # type: ignore[union-attr, arg-type]
        answer = f"{'Yes' if both else 'No'}. First image: {sa}. Second image: {sb}."
        req = ([fa] if fa.value == "true" else [], [fb] if fb.value == "true" else [])  # type: ignore[union-attr]
        ok = _segments_ok(answer, a, b, req)  # type: ignore[arg-type]
        comp = p.comp if p.verb == "is" else f"wearing {p.comp}"
        return Turn(text.format(c=comp), answer, {"template": tid, "kind": "compare", "concept": fa.concept,
                                                  "answer": "yes" if both else "no"}) if ok else None
    older_first = _age_rank(age_a) > _age_rank(age_b)  # type: ignore[arg-type]
    answer = (f"The person in the {'first' if older_first else 'second'} image looks older. First image: "
              f"{clause(age_a, rng)}. Second image: {clause(age_b, rng)}. {CAVEAT['age_group']}")  # type: ignore[arg-type]
    if not _segments_ok(answer.replace(CAVEAT["age_group"], ""), a, b, ([age_a], [age_b])):  # type: ignore[list-item]
        return None
    return Turn(text, answer, {"template": tid, "kind": "compare", "answer": "first" if older_first else "second"})


def _age_rank(f: Fact) -> int:
    return list(LEXICON["age_group"][1]).index(f.value)


SINGLE_GEN: dict[str, Callable[[Face, QAConfig, random.Random], Turn | None]] = {
    "yn": yes_no, "open": open_question, "accessories": accessories, "describe": describe}


def _message(turn: Turn, images: list[str]) -> list[dict[str, Any]]:
    user = {"role": "user", "content": [{"type": "image", "image": ref} for ref in images]
            + [{"type": "text", "text": turn.question}]}
    if isinstance(turn.answer, SearchCall):
        content = [{"type": "text", "text": turn.prefix}] if turn.prefix else None
        return [user, {"role": "assistant", "content": content, "tool_calls": [turn.answer.to_tool_call()]}]
    return [user, {"role": "assistant", "content": [{"type": "text", "text": turn.answer}]}]


def _conversation(face: Face, kind: str, partner: Face | None, cfg: QAConfig,
                  rng: random.Random) -> tuple[list[Turn], list[str]] | None:
    rid = face.record.id
    if kind in SINGLE_GEN:
        turn = SINGLE_GEN[kind](face, cfg, rng)
        return ([turn], [rid]) if turn else None
    if kind == "count":
        turn = count(face, cfg, rng)
        return ([turn], [f"full:{rid}"]) if turn else None
    if kind == "ret":
        turn = retrieval(face, cfg, rng)
        refs = [] if turn and turn.meta.get("call") == "ret.id" else [rid]
        return ([turn], refs) if turn else None
    if kind == "cmp":
        turn = compare(face, partner, cfg, rng) if partner is not None else None
        return ([turn], [rid, partner.record.id]) if turn and partner else None
    turns: list[Turn] = []  # multi-turn: 2-3 single-face questions of different kinds, maybe then a search
    for name in rng.sample(list(SINGLE_GEN), rng.choice([2, 3])):
        turn = SINGLE_GEN[name](face, cfg, rng)
        if turn:
            turns.append(turn)
    if len(turns) < 2:
        return None
    if rng.random() < 0.4:
        last = retrieval(face, cfg, rng)
        if last and last.meta.get("call") != "ret.id":
            turns.append(last)
    return turns, [rid]


def qa_samples(records: Iterable[FaceRecord], cfg: QAConfig, stats: Counter[str] | None = None) -> Iterator[dict]:
    """`cfg.per_face` chat samples per face (fewer when a face has too few confident facts)."""
    stats = stats if stats is not None else Counter()
    buffer: list[Face] = []
    by_identity: dict[str, list[Face]] = {}
    for record in records:
        facts, conflicted = extract_facts(record.attributes, threshold=cfg.threshold, sensitive=cfg.sensitive)
        face = Face(record, facts, conflicted)
        rng = record_rng(cfg.seed, record.id, "qa")
        made = 0
        for attempt in range(cfg.per_face * 5):
            if made == cfg.per_face:
                break
            weights = {k: w for k, w in cfg.kinds.items() if w > 0 and (k != "cmp" or buffer)
                       and (k != "count" or rng.random() < 1 / max(1, record.n_faces))}
            if not weights:
                break
            kind = rng.choices(list(weights), list(weights.values()))[0]
            partner = _partner(face, buffer, by_identity, rng) if kind == "cmp" else None
            conv = _conversation(face, kind, partner, cfg, rng)
            if conv is None:
                stats["skipped"] += 1
                continue
            turns, images = conv
            messages = _message(turns[0], images)
            for t in turns[1:]:
                messages += _message(t, [])
            ids = [record.id] + ([partner.record.id] if kind == "cmp" and partner else [])
            stats[kind] += 1
            stats.update(f"answer:{t.meta['answer']}" for t in turns if t.meta.get("kind") == "yes_no")
            yield {"id": f"{record.id}/qa{made}", "record_ids": ids, "split": record.split, "heldout": cfg.heldout,
                   "tools": ["face_search"], "messages": messages, "turns": [t.meta for t in turns]}
            made += 1
        buffer.append(face)
        if record.identity:
            by_identity.setdefault(record.identity, []).append(face)
        if len(buffer) > cfg.pair_buffer:
            old = buffer.pop(0)
            if old.record.identity:
                by_identity[old.record.identity].remove(old)


def _partner(face: Face, buffer: list[Face], by_identity: dict[str, list[Face]], rng: random.Random) -> Face | None:
    """Half the time (when possible) a face of the same identity, so same/different is balanced."""
    same = [f for f in by_identity.get(face.record.identity or "", []) if f.record.id != face.record.id]
    if same and rng.random() < 0.5:
        return rng.choice(same)
    return rng.choice(buffer) if buffer else None


@click.command("qa")
@click.argument("in_path", metavar="IN")
@click.argument("out_path", metavar="OUT.jsonl", type=click.Path(dir_okay=False))
@click.option("--per-face", default=4, show_default=True, help="Chat samples per face.")
@click.option("--heldout", is_flag=True, help="Use only the held-out question templates (evaluation sets).")
@click.option("--sensitive/--no-sensitive", default=False, show_default=True,
              help="Also ask about sensitive attributes (answers are hedged as apparent).")
@click.option("--threshold", default=DEFAULT_THRESHOLD, show_default=True)
@click.option("--seed", default=0, show_default=True)
def qa_cmd(in_path: str, out_path: str, per_face: int, heldout: bool, sensitive: bool, threshold: float,
           seed: int) -> None:
    """Write face question-answer chat samples (JSONL) for the faces of dataset IN."""
    from tqdm import tqdm

    from facevlm.data.store import iter_records, load_records

    cfg = QAConfig(per_face=per_face, heldout=heldout, sensitive=sensitive, threshold=threshold, seed=seed)
    ds = load_records(in_path)
    stats: Counter[str] = Counter()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with out.open("w") as fh:
        for sample in qa_samples(tqdm(iter_records(ds), total=len(ds), desc="qa"), cfg, stats):
            fh.write(json.dumps(sample, ensure_ascii=False) + "\n")
            n += 1
    click.echo(f"{n} samples -> {out}")
    click.echo(", ".join(f"{k}={v}" for k, v in sorted(stats.items())))
