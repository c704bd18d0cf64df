"""Attribute facts, their phrases, and the checker that keeps generated text faithful to them.

Captions, LLM rewrites and QA answers are all generated FROM labels, so each must be checkable AGAINST
them. This module is that one shared contract:

* `extract_facts` turns a record's attributes into *facts* about a small set of *concepts* (eyeglasses,
  hair colour, expression, apparent age group...). Several schema attributes feed one concept (CelebA's
  `Black_Hair` and the categorical `hair_color`; `Male` and `gender_presentation`; `No_Beard` inverted),
  so a caption cannot say "black hair" while another label says blond. Only confident values are facts
  (ground truth, or pseudo-labels with prob >= threshold, as FaceCaption-15M kept p > 0.85); a concept
  whose confident labels disagree is dropped and marked conflicted, so nothing may be said about it.
* the wording itself (`LEXICON`: per concept value, the phrases generators may use and the patterns
  that count as *saying* it) is data in facevlm/data/lexicon.py; this module is the logic that uses it.
* `find_claims` reads a text back into claims, with clause-local negation ("no glasses or hat",
  "not smiling"); `check` compares claims with facts: every required fact must be stated, no claim may
  contradict a known fact, and (strict) nothing may be claimed about a concept without a fact, no
  gendered words and no apparent names. A hallucinating LLM rewrite fails `check`, and so would a buggy
  template; tests run it over thousands of random label sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from facevlm.data.lexicon import BINARY, CLAUSE_BREAK, GENDERED, LEXICON, NAME, NAME_OK, NEGATORS, PATTERNS
from facevlm.schema import SENSITIVE, AttributeValue, age_to_group

DEFAULT_THRESHOLD = 0.85  # FaceCaption-15M kept pseudo-labels with p > 0.85
NEVER_STATED = frozenset({"Attractive"})  # a judgement about a person, not a visible attribute

# binary schema attribute -> the binary concept it sets (same value, "true"/"false")
_BINARY_MAP: dict[str, str] = {
    "Eyeglasses": "eyeglasses",
    "sunglasses": "sunglasses",
    "face_mask": "face_mask",
    "Wearing_Hat": "hat",
    "Wearing_Earrings": "earrings",
    "Wearing_Necklace": "necklace",
    "Wearing_Necktie": "necktie",
    "Wearing_Lipstick": "lipstick",
    "Heavy_Makeup": "heavy_makeup",
    "Smiling": "smiling",
    "Mouth_Slightly_Open": "mouth_open",
    "Goatee": "goatee",
    "Mustache": "mustache",
    "5_o_Clock_Shadow": "stubble",
    "Sideburns": "sideburns",
    "Bangs": "bangs",
    "Receding_Hairline": "receding_hairline",
    "Straight_Hair": "straight_hair",
    "Wavy_Hair": "wavy_hair",
    "Arched_Eyebrows": "arched_eyebrows",
    "Bushy_Eyebrows": "bushy_eyebrows",
    "Bags_Under_Eyes": "under_eye_bags",
    "Big_Lips": "big_lips",
    "Big_Nose": "big_nose",
    "Pointy_Nose": "pointy_nose",
    "Narrow_Eyes": "narrow_eyes",
    "Chubby": "chubby",
    "Double_Chin": "double_chin",
    "High_Cheekbones": "high_cheekbones",
    "Oval_Face": "oval_face",
    "Rosy_Cheeks": "rosy_cheeks",
    "Blurry": "blurry",
    "Young": "young",
    "Pale_Skin": "pale_skin",
}
# binary attributes that set a value of a categorical concept: true -> value, false -> "not value"
_ONE_HOT: dict[str, tuple[str, str]] = {
    "Black_Hair": ("hair_colour", "black"),
    "Blond_Hair": ("hair_colour", "blond"),
    "Brown_Hair": ("hair_colour", "brown"),
    "Gray_Hair": ("hair_colour", "gray"),
    "Bald": ("hair_length", "bald"),
}
_CATEGORICAL_MAP = {
    "hair_color": "hair_colour",
    "hair_length": "hair_length",
    "expression": "expression",
    "age_group": "age_group",
    "gender_presentation": "gender",
    "skin_tone": "skin_tone",
    "race": "race",
}


@dataclass(frozen=True)
class Fact:
    """What the labels say about one concept. `positive=False` means "the value is NOT `value`"
    (CelebA `Black_Hair`=false); binary concepts always use positive facts with value true/false."""

    concept: str
    value: str
    positive: bool = True
    origin: str = "gt"
    prob: float = 1.0
    sensitive: bool = False
    attribute: str = ""

    @property
    def stated(self) -> bool:
        """Whether generators have a phrase for it (silent facts are only checked, never said)."""
        return self.positive and bool(phrases(self)[0])


@dataclass(frozen=True)
class Claim:
    """A statement found in a text: concept is (not, if negated) one of `values`."""

    concept: str
    values: frozenset[str]
    negated: bool
    span: tuple[int, int]
    text: str


@dataclass
class CheckResult:
    missing: list[Fact] = field(default_factory=list)
    contradicted: list[tuple[Fact, Claim]] = field(default_factory=list)
    unsupported: list[Claim] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # gendered words, apparent names

    @property
    def ok(self) -> bool:
        return not (self.missing or self.contradicted or self.unsupported or self.problems)

    def reason(self) -> str:
        """A short machine-countable reason: the first failure class."""
        if self.contradicted:
            return "contradiction"
        if self.missing:
            return "dropped_fact"
        if self.unsupported:
            return "unsupported_claim"
        return "style" if self.problems else "ok"


def phrases(fact: Fact) -> tuple[str, ...]:
    """Generation phrases for a positive fact (first = canonical); ("",) when it is silent."""
    return LEXICON[fact.concept][1].get(fact.value, ("",)) if fact.positive else ("",)


def _numeric_facts(name: str, value: float) -> list[tuple[str, str]]:
    """Numbers become categories with a dead band, so a borderline pose is never asserted either way."""
    if name == "age":
        return [("age_group", age_to_group(value))]
    if name == "yaw":
        return (
            [("head_turn", "frontal")]
            if abs(value) <= 10
            else ([("head_turn", "left" if value > 0 else "right")] if abs(value) >= 25 else [])
        )
    if name == "pitch":
        return (
            [("head_pitch", "level")]
            if abs(value) <= 8
            else ([("head_pitch", "up" if value > 0 else "down")] if abs(value) >= 20 else [])
        )
    if name == "roll":
        return [("head_roll", "level")] if abs(value) <= 5 else ([("head_roll", "tilted")] if abs(value) >= 15 else [])
    return []


def _raw_facts(a: AttributeValue) -> list[Fact]:
    common = dict(origin=a.origin, prob=float(a.prob), sensitive=a.name in SENSITIVE, attribute=a.name)
    if a.name in _BINARY_MAP:
        return [Fact(_BINARY_MAP[a.name], a.value, **common)]
    if a.name == "No_Beard":
        return [Fact("beard", "false" if a.value == "true" else "true", **common)]
    if a.name == "Male":
        return [Fact("gender", "masculine" if a.value == "true" else "feminine", **common)]
    if a.name in _ONE_HOT:
        concept, value = _ONE_HOT[a.name]
        return [Fact(concept, value, positive=a.value == "true", **common)]
    if a.name in _CATEGORICAL_MAP:
        return [Fact(_CATEGORICAL_MAP[a.name], a.value, **common)]
    if a.name in ("age", "yaw", "pitch", "roll"):
        return [Fact(c, v, **common) for c, v in _numeric_facts(a.name, float(a.value))]
    return []


def extract_facts(
    attributes: Iterable[AttributeValue], *, threshold: float = DEFAULT_THRESHOLD, sensitive: bool = False
) -> tuple[list[Fact], set[str]]:
    """Confident facts per concept, and the set of concepts whose confident labels conflict.

    Ground truth always counts; a pseudo-label counts when prob >= threshold. Sensitive attributes are
    dropped unless `sensitive`. Conflicting concepts are removed entirely (the caller must not talk
    about them); duplicates from several attributes collapse into one fact.
    """
    by_concept: dict[str, list[Fact]] = {}
    for a in attributes:
        if a.name in NEVER_STATED or (a.name in SENSITIVE and not sensitive):
            continue
        if a.origin == "pseudo" and a.prob < threshold:
            continue
        for f in _raw_facts(a):
            by_concept.setdefault(f.concept, []).append(f)
    facts: list[Fact] = []
    conflicted: set[str] = set()
    for concept, group in by_concept.items():
        if concept == "hair_colour" and {f.value for f in group if f.positive} == {"gray", "white"}:
            # CelebA's Gray_Hair covers white hair: the specific categorical label wins
            group = [f for f in group if not (f.positive and f.value == "gray" and f.attribute == "Gray_Hair")]
        pos = {f.value for f in group if f.positive}
        neg = {f.value for f in group if not f.positive}
        if len(pos) > 1 or pos & neg:
            conflicted.add(concept)
            continue
        seen: set[tuple[str, bool]] = set()
        # ground truth first so the surviving duplicate carries the strongest origin
        for f in sorted(group, key=lambda f: (f.origin != "gt", -f.prob)):
            if (f.value, f.positive) in seen or (pos and not f.positive):
                continue  # a negative is implied by the positive value
            seen.add((f.value, f.positive))
            facts.append(f)
    return facts, conflicted


def _negated(text: str, start: int) -> bool:
    """A negator between the last clause break and the mention ("wearing no glasses or hat")."""
    before = text[max(0, start - 60) : start]
    breaks = list(CLAUSE_BREAK.finditer(before))
    clause = before[breaks[-1].end() :] if breaks else before
    return bool(NEGATORS.search(clause))


def find_claims(text: str) -> list[Claim]:
    """Every concept value the text asserts, longest match first so "sunglasses" is not "glasses"."""
    hits: list[tuple[int, int, str, str]] = []
    for concept, value, pattern in PATTERNS:
        hits += [(m.start(), m.end(), concept, value) for m in pattern.finditer(text)]
    hits.sort(key=lambda h: (h[0], -(h[1] - h[0])))
    claims: list[Claim] = []
    for start, end, concept, value in hits:
        negated = _negated(text, start)
        if LEXICON[concept][0] == BINARY and value == "false":  # "clean-shaven" = beard false
            value, negated = "true", not negated
        same = [i for i, c in enumerate(claims) if c.span == (start, end) and c.concept == concept]
        if same:  # one phrase naming several values: "dark hair" is black or brown
            c = claims[same[0]]
            claims[same[0]] = Claim(concept, c.values | {value}, c.negated, c.span, c.text)
        elif not any(c.span[0] <= start and end <= c.span[1] for c in claims):  # "sun-glasses" is not "glasses"
            claims.append(Claim(concept, frozenset({value}), negated, (start, end), text[start:end]))
    return claims


def _claim_holds(claim: Claim, fact: Fact) -> bool | None:
    """True if the claim agrees with the fact, False if it contradicts it, None if it says nothing."""
    if LEXICON[claim.concept][0] == BINARY:
        says = "false" if claim.negated else "true"
        return says == fact.value
    if fact.positive:
        inside = fact.value in claim.values
        return (not inside) if claim.negated else inside
    if claim.negated:  # "not black" vs fact "not black": agrees; says nothing otherwise
        return True if claim.values == {fact.value} else None
    return False if claim.values == {fact.value} else None


def check(
    text: str, required: Sequence[Fact], known: Sequence[Fact], *, conflicted: Iterable[str] = (), strict: bool = True
) -> CheckResult:
    """Is `text` faithful? `required` facts must each be stated; no claim may contradict `known` facts
    (or touch a conflicted concept); with `strict`, claims about concepts with no known fact, gendered
    words and capitalised mid-sentence words that look like names are rejected too."""
    result = CheckResult()
    claims = find_claims(text)
    known_by: dict[str, list[Fact]] = {}
    for f in list(known) + list(required):
        known_by.setdefault(f.concept, []).append(f)
    conflicted = set(conflicted)
    for claim in claims:
        facts = known_by.get(claim.concept, [])
        bad = [f for f in facts if _claim_holds(claim, f) is False]
        if bad:
            result.contradicted.append((bad[0], claim))
        elif claim.concept in conflicted or (strict and not facts):
            result.unsupported.append(claim)
    for f in required:
        if not any(c.concept == f.concept and _claim_holds(c, f) for c in claims):
            result.missing.append(f)
    if strict:
        result.problems += [f"gendered word {m.group(0)!r}" for m in GENDERED.finditer(text)]
        result.problems += [f"possible name {m.group(1)!r}" for m in NAME.finditer(text) if m.group(1) not in NAME_OK]
    return result
