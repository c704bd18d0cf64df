"""The tests' own reader of captions and answers: what a person would call a contradiction of a face's
labels or a sensitive-wording leak, written WITHOUT facevlm.data.facts, so the data engine's fact checker
is checked against an independent oracle (used by test_caption and test_qa); and, for photo-level answers,
which faces a text names by position and whether a "no face" answer says anything about a face."""

from __future__ import annotations

import re

from facevlm.schema import FaceRecord

HAIR = ("black", "brown", "blond", "red", "gray", "white")
EXPR_WORDS = {
    "neutral": "neutral",
    "happy": "happy|joyful",
    "sad": "sad|sorrowful",
    "surprise": "surprised|astonished",
    "anger": "angry|furious",
    "disgust": "disgust",
    "fear": "fearful|frightened",
}
SENSITIVE_WORDS = re.compile(
    r"apparent|feminine|masculine|race|skin tone|pale|fair complexion|young|youthful|"
    r"in their \d0s|baby|child|teenager|70 or over",
    re.I,
)


def confident(record: FaceRecord, threshold: float = 0.85) -> dict[str, str]:
    return {a.name: a.value for a in record.attributes if a.origin == "gt" or a.prob >= threshold}


def negated_here(text: str, start: int) -> bool:
    """A reader's view of negation: "no", "not" or "n't" earlier in the same clause."""
    clause = re.split(r"[.,;:]| and | but | with ", text[max(0, start - 40) : start])[-1]
    return bool(re.search(r"\b(no|not)\b|n't", clause))


def independent_violations(text: str, record: FaceRecord, sensitive: bool) -> list[str]:
    """Checks written without facts.py: what a reader would call a contradiction or a leak."""
    lab = confident(record)
    low = text.lower()
    out = []
    colours = {lab["hair_color"]} if "hair_color" in lab else set()
    colours |= {
        c
        for c, n in (("black", "Black_Hair"), ("brown", "Brown_Hair"), ("blond", "Blond_Hair"), ("gray", "Gray_Hair"))
        if lab.get(n) == "true"
    }
    if len(colours) == 1:
        for other in set(HAIR) - colours:
            if re.search(rf"\b{other}e? hair", low) or (other == "gray" and "grey hair" in low):
                out.append(f"hair colour {other} vs {colours}")
    if "expression" in lab:
        for value, words in EXPR_WORDS.items():
            if value != lab["expression"] and re.search(rf"\b({words})\b", low):
                out.append(f"expression word {words} vs {lab['expression']}")
    for attr, pattern in (
        ("Eyeglasses", r"(?<!sun)(?<!sun-)\b(eye)?glasses|spectacles"),
        ("Smiling", r"smiling"),
        ("Wearing_Hat", r"\b(hat|cap)\b"),
    ):
        said = [negated_here(low, m.start()) for m in re.finditer(pattern, low)]
        if lab.get(attr) == "false" and not all(said):
            out.append(f"{attr} stated but false")
        if lab.get(attr) == "true" and any(said):
            out.append(f"{attr} negated but true")
    unconfident = {a.name for a in record.attributes if a.origin == "pseudo" and a.prob < 0.85}
    if "Eyeglasses" in unconfident and "Eyeglasses" not in lab and re.search(r"\b(eye)?glasses|spectacles", low):
        out.append("unconfident Eyeglasses stated")
    if not sensitive and SENSITIVE_WORDS.search(text):
        out.append(f"sensitive wording {SENSITIVE_WORDS.search(text).group(0)!r} while disabled")
    if re.search(r"\b(he|she|his|her|man|woman|boy|girl)\b", low):
        out.append("gendered word")
    return out


# --- photo-level answers (no face visible, faces by position), read without facevlm.data.photos --------
ORDINALS = ("first", "second", "third", "fourth")
POSITION = re.compile(
    r"\bperson (?:on the (left|right)|in the (middle))\b|\b(first|second|third|fourth) person from the left\b"
)
FACE_WORDS = re.compile(
    r"\b(hair|glasses|spectacles|smil\w*|hat|cap|beard|mou?stache|expression|eyes?|mouth|lips|earrings?|"
    r"mask|happy|sad|neutral|angry|surprised|looks?|wearing|has|have)\b",
    re.I,
)


def said_positions(text: str, n: int) -> list[int]:
    """0-based left-to-right ranks, among `n` faces, of the faces a text refers to by position."""
    out = []
    for m in POSITION.finditer(text):
        side, middle, ordinal = m.groups()
        out.append(ORDINALS.index(ordinal) if ordinal else 1 if middle else 0 if side == "left" else n - 1)
    return out


def rank_by_x(boxes: list[list[float]]) -> list[int]:
    """Left-to-right rank of each box by its centre (the oracle for position answers)."""
    centres = [(b[0] + b[2]) / 2 for b in boxes]
    order = sorted(range(len(boxes)), key=lambda i: centres[i])
    return [order.index(i) for i in range(len(boxes))]
