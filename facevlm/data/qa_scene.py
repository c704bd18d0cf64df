"""Photo-level QA turns: "no face visible", and faces referred to by position in group photos.

- `no_face`: any face question (a yes/no or open question about one of the record's own facts, the
  accessories, description, counting or "who is this?" templates) asked about a face-free image
  (noface.py) is answered "I can't see a face in this image." (counting: "There are no faces in this
  photo."). The answer states nothing about a face, which the fact checker confirms (no claim at all).
- `by_position`: on the whole photo of 2-4 faces, a yes/no or open question about the face at a
  position ("Is the person on the left smiling?" -> "Yes, the person on the left is smiling.") is
  answered and checked like the single-face one, with the position as subject; and "Which person is
  wearing glasses?" names the faces that are by position ("The person in the middle is wearing
  glasses.", "No one in this photo is ...", "Everyone in this photo is ..."), each face it names checked
  against its own labels. "Which" needs a confident label of that concept for every face of the photo
  (what it leaves out is said to lack it) and every face in the record's split (a train sample never
  reads a dev face's labels); a face without a reliable position (photos.positions) is never referred to.

Positions and face-free regions come from photos.py; this module only words and checks turns.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from facevlm.data.caption import VERBS, join_phrases, piece_for
from facevlm.data.lexicon import BINARY, LEXICON
from facevlm.data.qa_templates import TEMPLATES, UNASKED, Asking, open_question_text, pick_template, yes_no_question
from facevlm.data.qa_turns import (
    Face,
    Turn,
    as_asked,
    faithful,
    open_plan,
    open_turn,
    with_subject,
    yes_no,
    yes_no_plan,
)

NOFACE = (
    "I can't see a face in this image.",
    "There is no face in this image.",
    "I don't see anyone's face in this picture.",
    "No face is visible in this image, so I can't answer that.",
)
NOFACE_COUNT = (
    "There are no faces in this photo.",
    "I can't see any faces in this picture.",
    "There are no faces in this image.",
)
NOFACE_ASKS = ("yn", "open", "accessories", "describe", "count", "ident")
POS_OPEN = frozenset(k.split(".", 2)[2] for k in TEMPLATES if k.startswith("pos.open."))


@dataclass
class Group:
    """Every face of one photo, left to right or not, with its position phrase (None: not reliably
    ordered); `labelled`: all faces are of the sampled record's split, so their labels may be stated."""

    faces: list[Face]
    where: list[str | None]
    labelled: bool


def no_face(face: Face, cfg: Asking, rng: random.Random) -> Turn:
    """A face question (worded from `face`'s own facts, so questions look like the real ones) answered
    with "no face visible"."""
    asks = rng.choice(NOFACE_ASKS)
    asked = None
    if asks == "yn" and (plan := yes_no_plan(face, rng)) is not None:
        asked = yes_no_question(plan[1], cfg, rng)
    elif asks == "open" and (fact := open_plan(face, rng)) is not None:
        asked = open_question_text(fact.concept, cfg, rng)
    elif asks in ("accessories", "count", "ident"):
        asked = pick_template(asks, cfg, rng)
    if asked is None:
        asks, asked = "describe", pick_template("describe", cfg, rng)
    tid, question = asked
    answer = rng.choice(NOFACE_COUNT if asks == "count" else NOFACE)
    return Turn(question, answer, {"template": tid, "kind": "noface", "asks": asks, "answer": "no face"})


def by_position(group: Group, me: int, cfg: Asking, rng: random.Random) -> Turn | None:
    """A question about face `me` of the group by its position, or (about once per photo) which faces
    have something."""
    face, where = group.faces[me], group.where[me]
    if where is None:
        return None
    if group.labelled and all(group.where) and rng.random() < 1 / len(group.faces):
        turn = _which(group, cfg, rng)
        if turn is not None:
            return turn
    head = {"kind": "position", "where": where, "about": [face.record.id], "image": "full"}
    fact = open_plan(face, rng, POS_OPEN) if rng.random() < 0.4 else None
    turn = open_turn(face, fact, cfg, rng, where) if fact is not None else yes_no(face, cfg, rng, where)
    return _placed(turn, head)


def _placed(turn: Turn | None, head: dict[str, Any]) -> Turn | None:
    """A single-face turn (qa_turns.py) asked of a face of a group photo: `head` (kind "position", where,
    about, image) first, then its template, its single-face kind as `asks`, and the rest of its meta."""
    if turn is None:
        return None
    rest = {k: v for k, v in turn.meta.items() if k not in ("template", "kind")}
    meta = {**head, "template": turn.meta["template"], "asks": turn.meta["kind"], **rest}
    return Turn(turn.question, turn.answer, meta)


def _which(group: Group, cfg: Asking, rng: random.Random) -> Turn | None:
    """ "Which person is wearing glasses?" over a photo whose every face has a confident label of it."""
    concepts = sorted(
        c
        for c, (kind, gen, _) in LEXICON.items()
        if kind == BINARY
        and c not in UNASKED
        and gen.get("true", ("",))[0]
        and all((f := face.known(c)) is not None and not f.sensitive for face in group.faces)
    )
    if not concepts:
        return None
    concept = rng.choice(concepts)
    facts = [face.known(concept) for face in group.faces]
    p = piece_for(as_asked(concept, "true", facts[0]), rng)
    tid, text = pick_template("pos.which", cfg, rng)
    plural, _, hedged, _ = VERBS[p.verb]
    hedge = any(face.hedge and f.origin == "pseudo" for face, f in zip(group.faces, facts))
    verb = hedged if hedge else plural
    yes = [i for i, f in enumerate(facts) if f.value == "true"]
    if not yes or len(yes) == len(facts):
        subject, about = ("No one" if not yes else "Everyone") + " in this photo", list(range(len(facts)))
    else:
        subject, about = join_phrases([f"the {group.where[i]}" for i in yes], rng), yes
    said = with_subject(f"they {verb} {p.comp}", subject)
    answer = said[0].upper() + said[1:] + "."
    if not all(faithful(answer, [facts[i]], group.faces[i]) for i in about):
        return None
    meta = {
        "template": tid,
        "kind": "position",
        "asks": "which",
        "concept": concept,
        "answer": [group.where[i] for i in yes],
        "about": [group.faces[i].record.id for i in about],
        "image": "full",
    }
    return Turn(text.format(c=f"{p.verb} {p.comp}"), answer, meta)
