"""The wording lexicon: which phrases say each concept value, and which words the fact checker reads.

Generators (captions, QA answers) and the checker (`facevlm.data.facts`) must agree on what a phrase
means, so both read this one table. Per concept, `LEXICON` holds its kind (BINARY or CATEGORICAL), the
phrases generators may use for each value (first = canonical; "" = silent: never stated, only checked),
and the extra patterns that also count as *saying* that value in free text (synonyms, spellings).
`PATTERNS` is the table compiled for reading text back; `GENDERED`, `NEGATORS`, `CLAUSE_BREAK`, `NAME`
and `NAME_OK` are the other words the checker looks for. Kept apart from the checking logic so that the
wording can be reviewed and extended as data, without reading how claims are matched against facts.
"""

from __future__ import annotations

import re

from facevlm.schema import RACES

BINARY = "binary"  # values "true"/"false"; a negated mention of a "true" phrase means "false"
CATEGORICAL = "categorical"  # one value of several

# concept -> (kind, value -> phrases for generation (first = canonical; "" = silent: never stated,
#             only checked), value -> extra regex patterns that also count as stating the value)
# Binary concepts use values "true"/"false"; a negated mention of a "true" phrase means "false".
# a colour/length word counts only when "hair" follows within two words; lookahead keeps the span
# short so "short black hair" yields both a length and a colour claim
_HAIR = r"(?=(?:[\s,-]+\w+){0,2}?[\s-]+hair)"
_B, _C = BINARY, CATEGORICAL  # short names keep the table readable
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


# How a sentence names a concept as a whole ("I can't tell {name} reliably"), where its key with spaces would
# read badly; sensitive concepts are named as apparent, since a face shows presentation, not identity.
CONCEPT_NAMES = {
    "eyeglasses": "glasses",
    "face_mask": "a face mask",
    "hat": "a hat",
    "mouth_open": "an open mouth",
    "beard": "facial hair",
    "hair_colour": "hair colour",
    "age_group": "apparent age",
    "young": "apparent age",
    "gender": "apparent gender",
    "race": "apparent race",
    "skin_tone": "skin tone",
}


def concept_name(concept: str) -> str:
    """The words for `concept` in a sentence: CONCEPT_NAMES, else its key with spaces ("head turn")."""
    return CONCEPT_NAMES.get(concept, concept.replace("_", " "))


def _compile() -> list[tuple[str, str, re.Pattern[str]]]:
    """(concept, value, pattern) per value: its generation phrases (articles optional, negative ones
    left out) and its extra patterns, as one whole-word, case-insensitive alternation."""
    table = []
    for concept, (_kind, gen, extra) in LEXICON.items():
        for value in set(gen) | set(extra):
            pats = [re.escape(p) for p in gen.get(value, ()) if p and not p.startswith(("no ", "not "))]
            pats += list(extra.get(value, ()))
            pats = [re.sub(r"^(?:a|an|the)\\ ", "", p) for p in pats]
            if pats:
                table.append((concept, value, re.compile(r"\b(?:" + "|".join(pats) + r")\b", re.I)))
    return table


PATTERNS = _compile()
# a capitalised word mid-sentence looks like a name, unless it is one of NAME_OK
NAME = re.compile(r"(?<![.!?:]\s)(?<!^)\b([A-Z][a-z]{2,})\b")
NAME_OK = frozenset(
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

GENDERED = re.compile(
    r"\b(he|she|him|his|her|hers|himself|herself|man|men|woman|women|boy|girl|guy|lady|"
    r"gentleman|male|female|mr|mrs|ms|sir|madam)\b",
    re.I,
)
# a negator between the last clause break and a mention negates it ("wearing no glasses or hat")
NEGATORS = re.compile(r"\b(no|not|without|never|neither|nor|lacks?|lacking|free of|none)\b|n't\b", re.I)
CLAUSE_BREAK = re.compile(r"[,.;:!?()]|\b(and|but|while|with|though|although|who|whose|yet|whereas)\b", re.I)
