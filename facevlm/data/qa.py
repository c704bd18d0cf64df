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

from facevlm.data.caption import (WEAR, CaptionConfig, build_caption, clause, join_phrases, merge_clauses,
                                   piece_for, plural_vp, record_rng)
from facevlm.data.facts import DEFAULT_THRESHOLD, LEXICON, Fact, check, extract_facts, find_claims, phrases
from facevlm.data.schema import FaceRecord
from facevlm.data.search_call import SearchCall
from facevlm.errors import FacevlmError

# kind -> question templates separated by " | "; a leading "*" marks a HELD-OUT template (evaluation only).
# Ids are "<kind>.<n>" (train) and "<kind>.h<n>" (held out), stable as long as the order is kept.
_SPEC = {
    "yn.wear": "Is this person wearing {c}? | Are they wearing {c}? | *Does the person in this photo have {c} on?",
    "yn.has": "Does this person have {c}? | Do they have {c}? | *Can you see {c} on this face?",
    "yn.is": "Is this person {c}? | Are they {c}? | *Would you say this person is {c}?",
    "yn.app": "Does this person appear to be {c}? | *Would you guess they are {c}?",
    "yn.expr": "Does this person look {c}? | Are they {c}? | *Is the person in the photo {c}?",
    "open.hair_colour": ("What colour is this person's hair? | What is their hair colour? | "
                         "*Describe the colour of their hair."),
    "open.hair_length": "How long is their hair? | *What length is this person's hair?",
    "open.expression": ("What expression does this person have? | How does this person seem to feel? | "
                        "What emotion does this face show? | *Which facial expression can you see?"),
    "open.age_group": ("How old does this person look? | What age group does this person appear to belong to? | "
                       "*Roughly how old would you guess they are?"),
    "open.gender": ("How would you describe this person's apparent gender presentation? | "
                    "*Does this person present as feminine or masculine?"),
    "open.head_turn": "Which way is their head turned? | *Is this person facing the camera or turned away?",
    "accessories": ("What is this person wearing on their face or head? | Are they wearing any accessories? | "
                    "*List the accessories you can see on this person."),
    "describe": ("Describe this person's face. | What does this person look like? | "
                 "Give a short description of the face in this photo. | *Write one sentence describing this face."),
    "count": ("How many faces are in this photo? | How many people can you see in this picture? | "
              "*Count the faces in this image."),
    "cmp.same": ("Are these two photos of the same person? | Do these images show the same person? | "
                 "*Is the person in the first photo also in the second one?"),
    "cmp.both": "Are both of these people {c}? | *Is each person in these photos {c}?",
    "cmp.older": ("Which of these two people looks older? | "
                  "*Who looks older: the person in the first photo or the second?"),
    "ret.same": ("Find more photos of this person in my gallery. | "
                 "Search my gallery for other pictures of this person. | *Can you look for this person in my photos?"),
    "ident": "Who is this? | What is this person's name? | *Do you know who this person is?",
    "ret.alike": ("Find people who look like this person in my gallery. | "
                  "*Show me faces in my gallery that resemble this one."),
    "ret.text": ("Find people {c} in my gallery. | Show me the top {k} photos of people {c}. | "
                 "*Search my gallery for anyone {c}."),
    "ret.edit": ("Find photos of this person {c}. | Show me this person {c}, from my gallery. | "
                 "*Are there pictures of this person {c} in my gallery?"),
    "ret.editalike": "Find people who look like this but {c}. | *Search for look-alikes of this face, {c}.",
    "ret.id": "Find more photos of gallery face {c}. | *Show me other pictures of the person with face id {c}.",
}


def _table(spec: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    table: dict[str, list[tuple[str, str]]] = {}
    for kind, texts in spec.items():
        count = {False: 0, True: 0}
        for text in texts.split(" | "):
            held = text.startswith("*")
            count[held] += 1
            table.setdefault(kind, []).append((f"{kind}.{'h' if held else ''}{count[held]}", text.lstrip("*")))
    return table


TEMPLATES = _table(_SPEC)
HELDOUT = frozenset(tid for rows in TEMPLATES.values() for tid, _ in rows if tid.rsplit(".", 1)[-1].startswith("h"))
EXPR_ADJ = {"neutral": "neutral-looking", "happy": "happy", "sad": "sad", "surprise": "surprised", "anger": "angry",
            "disgust": "disgusted", "fear": "afraid"}
CAVEAT = {"age_group": "Apparent age from a photo is only an estimate.", "young": "Apparent age is only an estimate.",
          "gender": "This describes appearance only, not the person's gender identity.",
          "skin_tone": "This is an estimate that depends on the photo and lighting.",
          "pale_skin": "This is an estimate that depends on the photo and lighting.",
          "race": "This is a perceived category, not a fact about the person."}
NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
YN_KIND = {"is wearing": "yn.wear", "has": "yn.has", "is": "yn.is", "appears to be": "yn.app"}
UNASKED = frozenset({"race", "skin_tone", "blurry"})  # said as notes in captions, not asked about
KIND_WEIGHTS = {"yn": 5, "open": 3, "accessories": 1, "describe": 2, "count": 1, "cmp": 2, "ret": 2, "multi": 2}


@dataclass
class QAConfig:
    """`kinds` weights the sample kinds (multi = 2-3 turn conversations); `pair_buffer` bounds the
    memory used to pair faces for two-image questions (pairs come from the last N faces streamed)."""

    per_face: int = 4
    threshold: float = DEFAULT_THRESHOLD
    sensitive: bool = False
    heldout: bool = False  # evaluation: only held-out templates
    pair_buffer: int = 256  # recent faces kept to build two-image questions
    seed: int = 0
    hedge_pseudo: bool = True  # "they seem to be smiling" for pseudo-labels
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
    kind = "yn.expr" if asked.concept == "expression" else YN_KIND[p.verb]
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
    worn = [f for f in face.facts if f.concept in WEAR and f.value == "true"]
    absent = [_asked(f.concept, "true", f) for f in face.facts if f.concept in WEAR and f.value == "false"
              and phrases(_asked(f.concept, "true", f))[0]]
    if not worn and len(absent) < 2:
        return None
    tid, question = _template("accessories", cfg, rng)
    hedged = [f for f in worn if face.hedge and f.origin == "pseudo"]
    plain = [piece_for(f, rng).comp for f in worn if f not in hedged]
    parts = [f"they are wearing {join_phrases(plain, rng)}"] if plain else []
    if hedged:
        parts.append(f"they {'also ' if plain else ''}seem to be wearing "
                     f"{join_phrases([piece_for(f, rng).comp for f in hedged], rng)}")
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
    text, used = build_caption(face.facts, CaptionConfig(sensitive=cfg.sensitive, hedge_pseudo=face.hedge), rng)
    if not used or not _ok(text, used, face):  # "Someone." is no description
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
        who = "who " + join_phrases([plural_vp(v) for v in merge_clauses(pieces, rng)], rng)
        nps = [p.np for p in pieces if p.slot != "pred"]
        text = " ".join(["a person"] + ([f"with {join_phrases(nps, rng)}"] if nps else [])
                        + [p.np for p in pieces if p.slot == "pred"])
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


def _segments_ok(answer: str, a: Face, b: Face, required: tuple[list[Fact], ...]) -> bool:
    """Two-image answers say "First image: ... Second image: ..."; each part is checked against its face."""
    head, _, rest = answer.partition("First image:")
    first, _, second = rest.partition("Second image:")
    return (not find_claims(head) and _ok(first, required[0], a) and _ok(second, required[1], b))


def compare(a: Face, b: Face, cfg: QAConfig, rng: random.Random) -> Turn | None:
    """Two faces: same identity? both with X? who looks older (sensitive only)?"""
    kinds = ["cmp.same"] if a.record.identity and b.record.identity else []
    shared = [(fa, fb) for fa in a.facts if LEXICON[fa.concept][0] == "binary"
              and (fa.concept in WEAR or fa.concept == "smiling") and (fb := b.known(fa.concept)) is not None]
    kinds += ["cmp.both"] if shared else []
    ages = (a.known("age_group"), b.known("age_group"))
    if ages[0] and ages[1] and ages[0].positive and ages[1].positive and ages[0].value != ages[1].value:
        kinds.append("cmp.older")
    if not kinds:
        return None
    kind = rng.choice(kinds)
    tid, text = _template(kind, cfg, rng)
    meta: dict[str, Any] = {"template": tid, "kind": "compare"}
    if kind == "cmp.same":
        same = a.record.identity == b.record.identity
        answer = "Yes, these appear to be the same person." if same else "No, these appear to be two different people."
        return Turn(text, answer, {**meta, "answer": "yes" if same else "no"})
    if kind == "cmp.both":
        pair = rng.choice(shared)
        both = all(f.value == "true" for f in pair)
        says = [clause(_asked(f.concept, "true", f), rng, negate=f.value == "false", hedge=face.hedge)
                for f, face in zip(pair, (a, b))]
        answer = f"{'Yes' if both else 'No'}. First image: {says[0]}. Second image: {says[1]}."
        p = piece_for(_asked(pair[0].concept, "true", pair[0]), rng)
        ok = _segments_ok(answer, a, b, tuple([f] if f.value == "true" else [] for f in pair))
        question = text.format(c=p.comp if p.verb == "is" else f"wearing {p.comp}")
        return Turn(question, answer, {**meta, "concept": pair[0].concept, "answer": "yes" if both else "no"}) \
            if ok else None
    age_a, age_b = ages[0], ages[1]
    assert age_a is not None and age_b is not None
    older_first = _age_rank(age_a) > _age_rank(age_b)
    answer = (f"The person in the {'first' if older_first else 'second'} image looks older. "
              f"First image: {clause(age_a, rng)}. Second image: {clause(age_b, rng)}.")
    if not _segments_ok(answer, a, b, ([age_a], [age_b])):
        return None
    return Turn(text, f"{answer} {CAVEAT['age_group']}", {**meta, "answer": "first" if older_first else "second"})


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
    turns: list[Turn] = []  # multi-turn: 2-3 turns of different kinds about one face; the last may be a search
    size = rng.choice([2, 3])
    last = retrieval(face, cfg, rng) if rng.random() < 0.4 else None
    last = last if last and last.meta.get("call") != "ret.id" else None
    for name in rng.sample(list(SINGLE_GEN), size - (last is not None)):
        turn = SINGLE_GEN[name](face, cfg, rng)
        concept = turn.meta.get("concept") if turn else None
        if turn and (concept is None or all(t.meta.get("concept") != concept for t in turns)):
            turns.append(turn)
    turns += [last] if last else []
    if len(turns) < 2:
        return None
    return turns, [rid]


def qa_samples(records: Iterable[FaceRecord], cfg: QAConfig, stats: Counter[str] | None = None) -> Iterator[dict]:
    """`cfg.per_face` chat samples per face (fewer when a face has too few confident facts)."""
    stats = stats if stats is not None else Counter()
    buffer: list[Face] = []
    by_identity: dict[str, list[Face]] = {}
    for record in records:
        facts, conflicted = extract_facts(record.attributes, threshold=cfg.threshold, sensitive=cfg.sensitive)
        face = Face(record, facts, conflicted, cfg.hedge_pseudo)
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
