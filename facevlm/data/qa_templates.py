"""What a face QA turn asks: the question templates (training and held-out) and how one is picked.

The wording of every question kind lives here as data, one line per kind, so it can be reviewed and
extended without reading the answer builders (qa_turns.py) or the sampling logic (qa.py). Template ids
are "<kind>.<n>" for training and "<kind>.h<n>" for HELD-OUT phrasings, which only evaluation uses
(`qa --heldout` sets and the VQA benchmark, facevlm/eval/tasks/vqa.py, through `yes_no_question` /
`open_question_text`), so evaluation measures generalisation to unseen phrasings. "pos.*" kinds ask
about one face of a group photo by its position ({p}) and which faces have something; the questions of
"no face visible" samples are the other kinds' own (qa_scene.py). Also here: the
concepts never asked about (UNASKED). This module never imports qa.py (`Asking` is all it reads of a
config).
"""

from __future__ import annotations

import random
from typing import Protocol

from facevlm.data.caption import piece_for
from facevlm.data.facts import Fact


class Asking(Protocol):
    """What the builders read from qa.QAConfig (or from an evaluation): which templates, and whether
    sensitive concepts may be asked about. A protocol, so that neither this module nor qa_turns.py
    imports qa.py."""

    heldout: bool
    sensitive: bool


# kind -> question templates separated by " | "; a leading "*" marks a HELD-OUT template (evaluation only).
# Ids are "<kind>.<n>" (train) and "<kind>.h<n>" (held out), stable as long as the order is kept.
_SPEC = {
    "yn.wear": (
        "Is this person wearing {c}? | Are they wearing {c}? | Has this person got {c} on? | "
        "In this photo, is the person wearing {c}? | *Does the person in this photo have {c} on?"
    ),
    "yn.has": (
        "Does this person have {c}? | Do they have {c}? | Has this person got {c}? | "
        "Looking at this face, does it have {c}? | *Can you see {c} on this face?"
    ),
    "yn.is": (
        "Is this person {c}? | Are they {c}? | In this photo, is the person {c}? | Tell me, is this person {c}? | "
        "*Would you say this person is {c}?"
    ),
    "yn.app": (
        "Does this person appear to be {c}? | In this photo, does the person appear to be {c}? | "
        "*Would you guess they are {c}?"
    ),
    "yn.expr": (
        "Does this person look {c}? | Are they {c}? | In this picture, does the person look {c}? | "
        "*Is the person in the photo {c}?"
    ),
    "open.hair_colour": (
        "What colour is this person's hair? | What is their hair colour? | *Describe the colour of their hair."
    ),
    "open.hair_length": "How long is their hair? | *What length is this person's hair?",
    "open.expression": (
        "What expression does this person have? | How does this person seem to feel? | "
        "What emotion does this face show? | *Which facial expression can you see?"
    ),
    "open.age_group": (
        "How old does this person look? | What age group does this person appear to belong to? | "
        "*Roughly how old would you guess they are?"
    ),
    "open.gender": (
        "How would you describe this person's apparent gender presentation? | "
        "*Does this person present as feminine or masculine?"
    ),
    "open.head_turn": "Which way is their head turned? | *Is this person facing the camera or turned away?",
    "accessories": (
        "What is this person wearing on their face or head? | Are they wearing any accessories? | "
        "*List the accessories you can see on this person."
    ),
    "describe": (
        "Describe this person's face. | What does this person look like? | "
        "Give a short description of the face in this photo. | *Write one sentence describing this face."
    ),
    "count": (
        "How many faces are in this photo? | How many people can you see in this picture? | "
        "*Count the faces in this image."
    ),
    "cmp.same": (
        "Are these two photos of the same person? | Do these images show the same person? | "
        "*Is the person in the first photo also in the second one?"
    ),
    "cmp.both": "Are both of these people {c}? | *Is each person in these photos {c}?",
    "cmp.older": (
        "Which of these two people looks older? | *Who looks older: the person in the first photo or the second?"
    ),
    "ret.same": (
        "Find more photos of this person in my gallery. | "
        "Search my gallery for other pictures of this person. | Do I have other pictures of this person? | "
        "Look this person up in my gallery. | Are there more pictures of this person in my gallery? | "
        "Search my photos for this person. | *Can you look for this person in my photos?"
    ),
    "ident": (
        "Who is this? | What is this person's name? | Can you tell me who this is? | Who am I looking at? | "
        "Do you recognise this person? | Can you identify this person? | Tell me who this person is. | "
        "Who is the person in this photo? | Any idea who this is? | *Do you know who this person is?"
    ),
    "ret.alike": (
        "Find people who look like this person in my gallery. | "
        "Are there people in my gallery who look like this? | Who in my gallery looks like this person? | "
        "Search my photos for faces similar to this one. | *Show me faces in my gallery that resemble this one."
    ),
    "ret.text": (
        "Find people {c} in my gallery. | Show me the top {k} photos of people {c}. | "
        "Do I have any photos of people {c}? | Which faces in my gallery are of people {c}? | "
        "Look through my photos for people {c}. | Can you find people {c}? | *Search my gallery for anyone {c}."
    ),
    "ret.edit": (
        "Find photos of this person {c}. | Show me this person {c}, from my gallery. | "
        "Do I have photos of this person {c}? | Can you find this person {c} in my gallery? | "
        "*Are there pictures of this person {c} in my gallery?"
    ),
    "ret.editalike": (
        "Find people who look like this but {c}. | Are there people like this but {c} in my gallery? | "
        "*Search for look-alikes of this face, {c}."
    ),
    "ret.id": (
        "Find more photos of gallery face {c}. | Are there other photos of gallery face {c}? | "
        "*Show me other pictures of the person with face id {c}."
    ),
    # one face of a group photo, referred to by position ({p}: "person on the left", "second person from the left")
    "pos.wear": "Is the {p} wearing {c}? | *Does the {p} have {c} on?",
    "pos.has": "Does the {p} have {c}? | *Can you see {c} on the {p}?",
    "pos.is": "Is the {p} {c}? | *Would you say the {p} is {c}?",
    "pos.app": "Does the {p} appear to be {c}? | *Would you guess the {p} is {c}?",
    "pos.expr": "Does the {p} look {c}? | Is the {p} {c}? | *Would you say the {p} looks {c}?",
    "pos.open.expression": (
        "What expression does the {p} have? | How does the {p} seem to feel? | "
        "*Which facial expression does the {p} show?"
    ),
    "pos.open.hair_colour": "What colour is the hair of the {p}? | *What hair colour does the {p} have?",
    "pos.open.hair_length": "How long is the hair of the {p}? | *What length is the {p}'s hair?",
    "pos.open.age_group": "How old does the {p} look? | *Roughly how old would you guess the {p} is?",
    # which faces of a group photo have something ({c}: "is wearing glasses", "is smiling", "has a beard")
    "pos.which": "Which person {c}? | Who in this photo {c}? | *Which of these people {c}?",
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
EXPR_ADJ = {
    "neutral": "neutral-looking",
    "happy": "happy",
    "sad": "sad",
    "surprise": "surprised",
    "anger": "angry",
    "disgust": "disgusted",
    "fear": "afraid",
}
YN_KIND = {"is wearing": "yn.wear", "has": "yn.has", "is": "yn.is", "appears to be": "yn.app"}
UNASKED = frozenset({"race", "skin_tone", "blurry"})  # said as notes in captions, not asked about


def pick_template(kind: str, cfg: Asking, rng: random.Random) -> tuple[str, str]:
    """A random (template id, text) of `kind`: a held-out one when `cfg.heldout`, a training one otherwise."""
    rows = [r for r in TEMPLATES[kind] if (r[0] in HELDOUT) == cfg.heldout]
    return rng.choice(rows)


def yes_no_question(asked: Fact, cfg: Asking, rng: random.Random, where: str = "") -> tuple[str, str]:
    """(template id, question) asking whether `asked` holds ("Is the person in the photo smiling?").
    Shared by the data engine's yes/no turns and the VQA benchmark, so both ask in the same words.
    `where` (a photos.POSITIONS phrase) asks about one face of a group photo by its position instead."""
    p = piece_for(asked, rng)
    kind = "yn.expr" if asked.concept == "expression" else YN_KIND[p.verb]
    if where:
        kind = "pos." + kind.split(".", 1)[1]
    tid, text = pick_template(kind, cfg, rng)
    return tid, text.format(c=EXPR_ADJ[asked.value] if kind.endswith(".expr") else p.comp, p=where)


def open_question_text(concept: str, cfg: Asking, rng: random.Random, where: str = "") -> tuple[str, str]:
    """(template id, question) asking for the value of `concept` (one with an "open.<concept>" kind;
    with `where`, a "pos.open.<concept>" kind about the face at that position)."""
    if not where:
        return pick_template(f"open.{concept}", cfg, rng)
    tid, text = pick_template(f"pos.open.{concept}", cfg, rng)
    return tid, text.format(p=where)
