"""The one table of zero-shot face prompts, shared by `facevlm.clip.inference.zero_shot_head` and the
benchmark's zeroshot task. (Question wording for VQA lives in `facevlm.data.qa_templates`: one wording
table per purpose.)

Every attribute value has several *positive* phrasings and several of its opposite states, each
wrapped in every template (CLIP prompt ensembling: mean of the normalised embeddings). A classifier
scores sim(positive ensemble) - w * max over opposite states of sim(state ensemble); a binary
attribute is present when its positive ensemble beats every opposite state (w = 1, threshold 0).

Negatives follow FineCLIPER: they describe the opposite state *positively* ("a person with a straight
face", "a person with bare eyes") instead of negating the positive ("a person who is not smiling").
Captions seldom negate, so a contrastive text tower embeds "not smiling" right next to "smiling":
with negated negatives the trained FaceCLIP fell below majority on Smiling. For categorical attributes
the negatives of a value are the phrasings of the other values; negations are never used.
"""

from __future__ import annotations

from facevlm.errors import FacevlmError
from facevlm.schema import VOCABULARY, AttributeSpec

TEMPLATES: tuple[str, ...] = (
    "a photo of {}.",
    "a close-up photo of {}.",
    "a cropped photo of the face of {}.",
    "a portrait of {}.",
)

Phrases = tuple[str, ...]

# Binary attributes: (positive phrasings, phrasings of the opposite state).
BINARY: dict[str, tuple[Phrases, Phrases]] = {
    "Eyeglasses": (
        ("a person wearing eyeglasses", "a person wearing glasses", "a person in spectacles"),
        ("a person with bare eyes", "a face with nothing over the eyes"),
    ),
    "sunglasses": (
        ("a person wearing sunglasses", "a person with dark glasses over the eyes"),
        ("a person with bare, clearly visible eyes", "a face with nothing over the eyes"),
    ),
    "face_mask": (
        ("a person wearing a face mask", "a face with the mouth and nose covered by a mask"),
        ("a person with an uncovered face", "a face with the mouth and nose visible"),
    ),
    "Smiling": (
        ("a smiling person", "a person with a smile", "a person grinning happily"),
        (
            "a person with a straight face",
            "a person with a neutral expression",
            "a serious-looking person",
            "a person with a sad or angry expression",
            "a person with closed lips",
        ),
    ),
    "Mouth_Slightly_Open": (
        ("a person with the mouth slightly open", "a person with parted lips"),
        ("a person with the mouth closed", "a person with closed lips"),
    ),
    "Wearing_Hat": (
        ("a person wearing a hat", "a person with a cap on the head"),
        ("a bare-headed person", "a person with uncovered hair"),
    ),
    "Wearing_Earrings": (("a person wearing earrings",), ("a person with bare earlobes",)),
    "Wearing_Lipstick": (
        ("a person wearing lipstick", "a person with painted lips"),
        ("a person with natural, unpainted lips",),
    ),
    "Wearing_Necklace": (("a person wearing a necklace",), ("a person with a bare neck",)),
    "Wearing_Necktie": (
        ("a person wearing a necktie", "a person in a shirt and tie"),
        ("a person with an open collar", "a person in casual clothes"),
    ),
    "Heavy_Makeup": (("a person with heavy makeup",), ("a person with a natural, bare face",)),
    "No_Beard": (("a clean-shaven person", "a person with a smooth chin"), ("a person with a beard",)),
    "5_o_Clock_Shadow": (("a person with stubble", "a person with a five o'clock shadow"), ("a clean-shaven person",)),
    "Goatee": (("a person with a goatee",), ("a clean-shaven person",)),
    "Mustache": (("a person with a mustache",), ("a person with a smooth upper lip", "a clean-shaven person")),
    "Sideburns": (("a person with sideburns",), ("a person with clean-shaven cheeks",)),
    "Bald": (("a bald person", "a person with a shaved head"), ("a person with a full head of hair",)),
    "Bangs": (
        ("a person with bangs", "a person with a fringe over the forehead"),
        ("a person with a bare forehead", "a person with hair swept back"),
    ),
    "Receding_Hairline": (("a person with a receding hairline",), ("a person with a full hairline",)),
    "Black_Hair": (("a person with black hair",), ("a person with light hair",)),
    "Blond_Hair": (("a person with blond hair",), ("a person with dark hair",)),
    "Brown_Hair": (("a person with brown hair",), ("a person with black hair", "a person with blond hair")),
    "Gray_Hair": (("a person with gray hair",), ("a person with dark hair", "a person with blond hair")),
    "Straight_Hair": (("a person with straight hair",), ("a person with wavy hair", "a person with curly hair")),
    "Wavy_Hair": (("a person with wavy hair",), ("a person with straight hair",)),
    "Arched_Eyebrows": (("a person with arched eyebrows",), ("a person with straight eyebrows",)),
    "Bushy_Eyebrows": (("a person with bushy eyebrows",), ("a person with thin eyebrows",)),
    "Bags_Under_Eyes": (("a person with bags under the eyes",), ("a person with smooth skin under the eyes",)),
    "Narrow_Eyes": (("a person with narrow eyes",), ("a person with wide open eyes",)),
    "Big_Lips": (("a person with big lips", "a person with full lips"), ("a person with thin lips",)),
    "Big_Nose": (("a person with a big nose",), ("a person with a small nose",)),
    "Pointy_Nose": (("a person with a pointy nose",), ("a person with a rounded nose",)),
    "High_Cheekbones": (("a person with high cheekbones",), ("a person with flat cheeks",)),
    "Rosy_Cheeks": (("a person with rosy cheeks",), ("a person with pale cheeks",)),
    "Double_Chin": (("a person with a double chin",), ("a person with a defined jawline",)),
    "Oval_Face": (("a person with an oval face",), ("a person with a round face", "a person with a square face")),
    "Chubby": (("a chubby person",), ("a slim person",)),
    "Pale_Skin": (("a person with pale skin",), ("a person with tanned skin",)),
    "Blurry": (("a blurry face", "an out-of-focus face"), ("a sharp face", "a face in sharp focus")),
    "Attractive": (("an attractive person",), ("a plain-looking person",)),
    "Young": (("a young person",), ("an old person", "an elderly person")),
    "Male": (("a man",), ("a woman",)),
}

# Categorical attributes: value -> phrasings (same value order as the schema vocabulary).
CATEGORICAL: dict[str, dict[str, Phrases]] = {
    "expression": {
        "neutral": (
            "a person with a neutral expression",
            "a person with a straight face",
            "a calm, expressionless face",
        ),
        "happy": ("a person with a happy expression", "a smiling, happy face", "a person who looks happy"),
        "sad": ("a person with a sad expression", "a sad, unhappy face", "a person who looks sad"),
        "surprise": (
            "a person with a surprised expression",
            "a surprised face with raised eyebrows",
            "a person who looks surprised",
        ),
        "anger": ("a person with an angry expression", "an angry face with a frown", "a person who looks angry"),
        "disgust": (
            "a person with a disgusted expression",
            "a disgusted face with a wrinkled nose",
            "a person who looks disgusted",
        ),
        "fear": ("a person with a fearful expression", "a frightened face", "a person who looks scared"),
    },
    "age_group": {
        "0-2": ("a baby",),
        "3-9": ("a child",),
        "10-19": ("a teenager",),
        "20-29": ("a person in their twenties",),
        "30-39": ("a person in their thirties",),
        "40-49": ("a person in their forties",),
        "50-59": ("a person in their fifties",),
        "60-69": ("a person in their sixties",),
        "70+": ("a person over seventy years old",),
    },
    "gender_presentation": {
        "feminine": ("a feminine-presenting person",),
        "masculine": ("a masculine-presenting person",),
    },
    "skin_tone": {
        "1": ("a person with very light skin",),
        "2": ("a person with light skin",),
        "3": ("a person with light brown skin",),
        "4": ("a person with medium brown skin",),
        "5": ("a person with dark brown skin",),
        "6": ("a person with very dark skin",),
    },
    "race": {v: (f"a {v.replace('_', ' or ')} person",) for v in VOCABULARY["race"].values},
    "hair_color": {c: (f"a person with {c} hair",) for c in ("black", "brown", "blond", "red", "gray", "white")},
    "hair_length": {
        "bald": ("a bald person", "a person with a shaved head"),
        "short": ("a person with short hair",),
        "medium": ("a person with medium-length hair",),
        "long": ("a person with long hair",),
    },
}


def _words(name: str) -> str:
    return name.replace("_", " ").lower()


def _spec(attribute: str) -> AttributeSpec:
    spec = VOCABULARY.get(attribute)
    if spec is None:
        raise FacevlmError(f"attribute {attribute!r}: not in facevlm.schema.VOCABULARY")
    if spec.kind == "numeric":
        raise FacevlmError(
            f"attribute {attribute!r} is numeric; zero-shot classification needs a categorical "
            f"or binary attribute (e.g. age_group instead of age)"
        )
    return spec


def binary_sides(attribute: str) -> tuple[Phrases, Phrases]:
    """(positive phrasings, opposite-state phrasings) of a binary attribute, untemplated.

    Attributes missing from BINARY (a schema extension) fall back to "a person with X" versus a
    negation: a weak negative, but the positive side alone still ranks images."""
    if _spec(attribute).kind != "binary":
        raise FacevlmError(f"attribute {attribute!r} is not binary")
    if attribute in BINARY:
        return BINARY[attribute]
    if attribute.startswith("Wearing_"):
        thing = _words(attribute[len("Wearing_") :])
        return (f"a person wearing a {thing}",), (f"a person not wearing a {thing}",)
    return (f"a person with {_words(attribute)}",), (f"a person without {_words(attribute)}",)


def value_phrases(attribute: str) -> dict[str, Phrases]:
    """value -> untemplated phrasings of a categorical attribute, in schema order."""
    spec = _spec(attribute)
    if spec.kind != "categorical":
        raise FacevlmError(f"attribute {attribute!r} is not categorical")
    table = CATEGORICAL.get(attribute, {})
    return {v: table.get(v) or (f"a person whose {_words(attribute)} is {v}",) for v in spec.values}


def templated(phrases: Phrases, templates: Phrases = TEMPLATES) -> list[str]:
    """Every phrasing in every template (the prompt ensemble of one side)."""
    return [t.format(p) for p in phrases for t in templates]


def attribute_prompts(attribute: str) -> dict[str, tuple[list[str], list[list[str]]]]:
    """value -> (positive prompts, opposite states), templates applied.

    The positive phrasings of a value form one ensemble; each opposite state stays its own ensemble,
    because "not smiling" is a union of different looks (a straight face, a frown, closed lips) whose
    mean embedding resembles none of them: a classifier compares with the *closest* opposite state.
    Binary attributes get values "true"/"false", each side's phrasings being the other's states. A
    categorical value's opposite states are the other values, by their first phrasing."""
    if _spec(attribute).kind == "binary":
        pos, neg = binary_sides(attribute)
        return {
            "true": (templated(pos), [templated((n,)) for n in neg]),
            "false": (templated(neg), [templated((p,)) for p in pos]),
        }
    values = value_phrases(attribute)
    return {v: (templated(p), [templated((values[o][0],)) for o in values if o != v]) for v, p in values.items()}
