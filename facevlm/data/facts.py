"""Attribute facts, their phrases, and the checker that keeps generated text faithful to them.

Captions, LLM rewrites and QA answers are all generated FROM labels, so each must be checkable AGAINST
them. This module is that one shared contract:

* `extract_facts` turns a record's attributes into *facts* about a small set of *concepts* (eyeglasses,
  hair colour, expression, apparent age group...). Several schema attributes feed one concept (CelebA's
  `Black_Hair` and the categorical `hair_color`; `Male` and `gender_presentation`; `No_Beard` inverted),
  so a caption cannot say "black hair" while another label says blond. Only confident values are facts
  (ground truth, or pseudo-labels with prob >= threshold, as FaceCaption-15M kept p > 0.85); a concept
  whose confident labels disagree is dropped and marked conflicted, so nothing may be said about it.
* `LEXICON` holds, per concept value, the phrases generators may use (first = canonical) and the
  patterns that count as *saying* that value in free text (synonyms included).
* `find_claims` reads a text back into claims, with clause-local negation ("no glasses or hat",
  "not smiling"); `check` compares claims with facts: every required fact must be stated, no claim may
  contradict a known fact, and (strict) nothing may be claimed about a concept without a fact, no
  gendered words and no apparent names. A hallucinating LLM rewrite fails `check`, and so would a buggy
  template; tests run it over thousands of random label sets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from facevlm.schema import RACES, SENSITIVE, AttributeValue, age_to_group

DEFAULT_THRESHOLD = 0.85  # FaceCaption-15M kept pseudo-labels with p > 0.85
NEVER_STATED = frozenset({"Attractive"})  # a judgement about a person, not a visible attribute

# concept -> (kind, value -> phrases for generation (first = canonical; "" = silent: never stated,
#             only checked), value -> extra regex patterns that also count as stating the value)
# Binary concepts use values "true"/"false"; a negated mention of a "true" phrase means "false".
# a colour/length word counts only when "hair" follows within two words; lookahead keeps the span
# short so "short black hair" yields both a length and a colour claim
_HAIR = r"(?=(?:[\s,-]+\w+){0,2}?[\s-]+hair)"
_B = "binary"
_C = "categorical"
LEXICON: dict[str, tuple[str, dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]] = {
    "eyeglasses": (
        _B,
        {"true": ("glasses", "eyeglasses", "spectacles"), "false": ("no glasses",)},
        {"true": (r"eye-?glasses", r"spectacles", r"specs")},
    ),
    "sunglasses": (
        _B,
        {"true": ("sunglasses", "dark sunglasses"), "false": ("no sunglasses",)},
        {"true": (r"sun-?glasses", r"shades")},
    ),
    "face_mask": (_B, {"true": ("a face mask", "a mask"), "false": ("no face mask",)}, {"true": (r"masks?",)}),
    "hat": (
        _B,
        {"true": ("a hat", "a cap"), "false": ("no hat",)},
        {"true": (r"hats?", r"caps?", r"beanies?", r"headwear", r"headdress", r"helmets?", r"hoods?", r"bandanas?")},
    ),
    "earrings": (_B, {"true": ("earrings",), "false": ("",)}, {"true": (r"earrings?",)}),
    "necklace": (_B, {"true": ("a necklace",), "false": ("",)}, {"true": (r"necklaces?",)}),
    "necktie": (_B, {"true": ("a necktie", "a tie"), "false": ("",)}, {"true": (r"neck-?ties?", r"ties?")}),
    "lipstick": (_B, {"true": ("lipstick",), "false": ("",)}, {"true": (r"lipsticks?",)}),
    "heavy_makeup": (
        _B,
        {"true": ("heavy makeup", "heavy make-up"), "false": ("",)},
        {"true": (r"heavy make-?up", r"lots of make-?up")},
    ),
    "smiling": (_B, {"true": ("smiling",), "false": ("not smiling",)}, {"true": (r"smil\w*", r"grin\w*")}),
    "mouth_open": (
        _B,
        {"true": ("a slightly open mouth", "parted lips"), "false": ("",)},
        {"true": (r"(?:slightly )?open mouth", r"mouth (?:is )?(?:slightly )?open", r"parted lips")},
    ),
    "beard": (
        _B,
        {"true": ("a beard",), "false": ("no beard", "a clean-shaven face")},
        {"true": (r"beards?", r"bearded"), "false": (r"clean-?shaven",)},
    ),
    "goatee": (_B, {"true": ("a goatee",), "false": ("",)}, {"true": (r"goatees?",)}),
    "mustache": (_B, {"true": ("a mustache", "a moustache"), "false": ("",)}, {"true": (r"mou?stache[sd]?",)}),
    "stubble": (
        _B,
        {"true": ("stubble", "a five o'clock shadow"), "false": ("",)},
        {"true": (r"stubble", r"five o'?clock shadow", r"5 o'?clock shadow")},
    ),
    "sideburns": (_B, {"true": ("sideburns",), "false": ("",)}, {"true": (r"sideburns?",)}),
    "bangs": (_B, {"true": ("bangs", "a fringe"), "false": ("",)}, {"true": (r"bangs", r"fringe")}),
    "receding_hairline": (_B, {"true": ("a receding hairline",), "false": ("",)}, {"true": (r"receding",)}),
    "straight_hair": (_B, {"true": ("straight hair",), "false": ("",)}, {"true": (r"straight" + _HAIR,)}),
    "wavy_hair": (_B, {"true": ("wavy hair",), "false": ("",)}, {"true": (r"wavy", r"curly")}),
    "arched_eyebrows": (_B, {"true": ("arched eyebrows",), "false": ("",)}, {"true": (r"arched",)}),
    "bushy_eyebrows": (
        _B,
        {"true": ("bushy eyebrows", "thick eyebrows"), "false": ("",)},
        {"true": (r"bushy", r"thick eyebrows")},
    ),
    "under_eye_bags": (_B, {"true": ("bags under the eyes",), "false": ("",)}, {"true": (r"bags under",)}),
    "big_lips": (_B, {"true": ("full lips", "big lips"), "false": ("",)}, {"true": (r"(?:full|big|large) lips",)}),
    "big_nose": (
        _B,
        {"true": ("a big nose", "a large nose"), "false": ("",)},
        {"true": (r"(?:big|large|prominent) nose",)},
    ),
    "pointy_nose": (
        _B,
        {"true": ("a pointy nose", "a pointed nose"), "false": ("",)},
        {"true": (r"point(?:y|ed) nose",)},
    ),
    "narrow_eyes": (_B, {"true": ("narrow eyes",), "false": ("",)}, {"true": (r"narrow eyes",)}),
    "chubby": (_B, {"true": ("a full, round face",), "false": ("",)}, {"true": (r"chubby", r"round face")}),
    "double_chin": (_B, {"true": ("a double chin",), "false": ("",)}, {"true": (r"double chin",)}),
    "high_cheekbones": (_B, {"true": ("high cheekbones",), "false": ("",)}, {"true": (r"high cheekbones?",)}),
    "oval_face": (_B, {"true": ("an oval face",), "false": ("",)}, {"true": (r"oval",)}),
    "rosy_cheeks": (_B, {"true": ("rosy cheeks",), "false": ("",)}, {"true": (r"rosy",)}),
    "blurry": (
        _B,
        {"true": ("blurry", "slightly blurred", "out of focus"), "false": ("",)},
        {"true": (r"blurr?y", r"blurred", r"out of focus")},
    ),
    "hair_colour": (
        _C,
        {v: (f"{v} hair",) for v in ("black", "brown", "blond", "red", "gray", "white")}
        | {"blond": ("blond hair", "blonde hair"), "gray": ("gray hair", "grey hair")},
        {
            "blond": (r"blonde?" + _HAIR, r"blonde", r"fair-haired"),
            "black": (r"black" + _HAIR, r"dark" + _HAIR),  # "dark hair" = black or brown
            "brown": (r"brown" + _HAIR, r"brunette", r"dark" + _HAIR),
            "red": (r"(?:red|ginger|auburn)" + _HAIR, r"redhead"),
            "gray": (r"(?:gr[ae]y|silver)" + _HAIR,),
            "white": (r"white" + _HAIR,),
        },
    ),
    "hair_length": (
        _C,
        {"bald": ("a bald head",), "short": ("short hair",), "medium": ("medium-length hair",), "long": ("long hair",)},
        {
            "bald": (r"bald\w*",),
            "short": (r"short" + _HAIR,),
            "medium": (r"medium[\s-]+length", r"shoulder[\s-]+length"),
            "long": (r"long" + _HAIR,),
        },
    ),
    "expression": (
        _C,
        {
            "neutral": ("a neutral expression", "a calm, neutral look"),
            "happy": ("a happy expression", "a joyful look"),
            "sad": ("a sad expression", "a sorrowful look"),
            "surprise": ("a surprised expression", "an astonished look"),
            "anger": ("an angry expression", "a furious look"),
            "disgust": ("a disgusted expression", "a look of disgust"),
            "fear": ("a fearful expression", "a frightened look"),
        },
        {
            "neutral": (r"neutral", r"expressionless", r"blank expression", r"straight face"),
            "happy": (r"happy", r"happiness", r"joy\w*", r"cheerful", r"delighted", r"glad"),
            "sad": (r"sad\w*", r"sorrow\w*", r"unhappy", r"downcast", r"gloomy", r"melanchol\w*"),
            "surprise": (r"surprise\w*", r"astonish\w*", r"amazed", r"shock\w*", r"startled"),
            "anger": (r"angry", r"anger", r"furious", r"annoyed", r"irritated", r"rage"),
            "disgust": (r"disgust\w*", r"repulsed", r"revolted"),
            "fear": (r"fear\w*", r"afraid", r"scared", r"frightened", r"terrified"),
        },
    ),
    "age_group": (
        _C,
        {
            "0-2": ("a baby",),
            "3-9": ("a child",),
            "10-19": ("a teenager",),
            **{f"{d}-{d + 9}": (f"in their {d}s",) for d in range(20, 70, 10)},
            "70+": ("aged 70 or over",),
        },
        {
            "0-2": (r"bab(?:y|ies)", r"infant", r"toddler"),
            "3-9": (r"child", r"kids?"),
            "10-19": (r"teen\w*", r"adolescent"),
            **{
                f"{d}-{d + 9}": (rf"{d}s", rf"{w}ies")
                for d, w in ((20, "twent"), (30, "thirt"), (40, "fort"), (50, "fift"), (60, "sixt"))
            },
            "70+": (r"[789]0s", r"70 or over", r"over 70", r"elderly", r"senior", r"seventies", r"eighties"),
        },
    ),
    "young": (_B, {"true": ("young", "youthful"), "false": ("",)}, {"true": (r"young", r"youthful")}),
    "gender": (
        _C,
        {"feminine": ("feminine presentation",), "masculine": ("masculine presentation",)},
        {"feminine": (r"feminine",), "masculine": (r"masculine",)},
    ),
    "skin_tone": (
        _C,
        {v: (f"skin tone: {v} on a 1-6 scale",) for v in "123456"},
        {v: (rf"tone\W+(?:of\W+)?{v}\b",) for v in "123456"},
    ),
    "pale_skin": (
        _B,
        {"true": ("pale skin", "a fair complexion"), "false": ("",)},
        {"true": (r"pale", r"fair (?:skin|complexion)")},
    ),
    "race": (
        _C,
        {v: (f"race label: {v.replace('_', '/')}",) for v in RACES},
        {v: (rf"race(?: label)?\W+{re.escape(v.replace('_', '/'))}",) for v in RACES}
        | {
            "White": (r"race(?: label)?\W+white", r"caucasian"),
            "Black": (r"race(?: label)?\W+black", r"african"),
            "Latino_Hispanic": (r"latin[oa]\w*", r"hispanic"),
            "East Asian": (r"(?<!southeast )asian",),
            "Indian": (r"indian",),
            "Middle Eastern": (r"middle eastern",),
        },
    ),
    "head_turn": (
        _C,
        {
            "frontal": ("facing the camera", "looking straight at the camera"),
            "left": ("turned to their left",),
            "right": ("turned to their right",),
        },
        {
            "frontal": (r"facing the camera", r"frontal", r"straight at the camera", r"head-on"),
            "left": (r"(?:turned|turning|facing) (?:to (?:their|the) )?left",),
            "right": (r"(?:turned|turning|facing) (?:to (?:their|the) )?right",),
        },
    ),
    "head_pitch": (
        _C,
        {"up": ("looking up",), "down": ("looking down",), "level": ("",)},
        {"up": (r"looking up\w*", r"tilted up\w*"), "down": (r"looking down\w*", r"tilted down\w*")},
    ),
    "head_roll": (
        _C,
        {"tilted": ("tilting their head",), "level": ("",)},
        {"tilted": (r"head (?:is )?tilted", r"tilt\w* (?:their|the) head")},
    ),
}

# schema attribute -> (concept, value when true, value when false, inverted?) for binary attributes.
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
GENDERED = re.compile(
    r"\b(he|she|him|his|her|hers|himself|herself|man|men|woman|women|boy|girl|guy|lady|"
    r"gentleman|male|female|mr|mrs|ms|sir|madam)\b",
    re.I,
)
_NEGATORS = re.compile(r"\b(no|not|without|never|neither|nor|lacks?|lacking|free of|none)\b|n't\b", re.I)
_CLAUSE_BREAK = re.compile(r"[,.;:!?()]|\b(and|but|while|with|though|although|who|whose|yet|whereas)\b", re.I)


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


def _compile() -> list[tuple[str, str, re.Pattern[str]]]:
    table = []
    for concept, (_kind, gen, extra) in LEXICON.items():
        for value in set(gen) | set(extra):
            pats = [re.escape(p) for p in gen.get(value, ()) if p and not p.startswith(("no ", "not "))]
            pats += list(extra.get(value, ()))
            pats = [re.sub(r"^(?:a|an|the)\\ ", "", p) for p in pats]
            if pats:
                table.append((concept, value, re.compile(r"\b(?:" + "|".join(pats) + r")\b", re.I)))
    return table


_PATTERNS = _compile()
_NAME = re.compile(r"(?<![.!?:]\s)(?<!^)\b([A-Z][a-z]{2,})\b")
_NAME_OK = frozenset(
    {
        "I",
        "FairFace",
        "Close",
        "Portrait",
        "Photo",
        "Image",
        "Asian",
        "East",
        "Southeast",
        "Indian",
        "Middle",
        "Eastern",
        "White",
        "Black",
        "Latino",
        "Hispanic",
        "Yes",
        "No",
    }
)


def _negated(text: str, start: int) -> bool:
    """A negator between the last clause break and the mention ("wearing no glasses or hat")."""
    before = text[max(0, start - 60) : start]
    breaks = list(_CLAUSE_BREAK.finditer(before))
    clause = before[breaks[-1].end() :] if breaks else before
    return bool(_NEGATORS.search(clause))


def find_claims(text: str) -> list[Claim]:
    """Every concept value the text asserts, longest match first so "sunglasses" is not "glasses"."""
    hits: list[tuple[int, int, str, str]] = []
    for concept, value, pattern in _PATTERNS:
        hits += [(m.start(), m.end(), concept, value) for m in pattern.finditer(text)]
    hits.sort(key=lambda h: (h[0], -(h[1] - h[0])))
    claims: list[Claim] = []
    for start, end, concept, value in hits:
        negated = _negated(text, start)
        if LEXICON[concept][0] == _B and value == "false":  # "clean-shaven" = beard false
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
    if LEXICON[claim.concept][0] == _B:
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
        result.problems += [f"possible name {m.group(1)!r}" for m in _NAME.finditer(text) if m.group(1) not in _NAME_OK]
    return result
