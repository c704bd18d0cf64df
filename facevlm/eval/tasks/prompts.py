"""Text prompts for zero-shot face attributes: a positive and a negative phrasing per attribute
value, each wrapped in several templates and averaged (CLIP prompt ensembling); FineCLIPER-style
negatives ("a face without a happy expression") sharpen categorical classes and *are* the decision
boundary for binary attributes (score = sim(positive) - sim(negative), threshold 0)."""

from __future__ import annotations

TEMPLATES: tuple[str, ...] = ("a photo of {}.", "a close-up photo of {}.", "a cropped photo of the face of {}.",
                              "a portrait of {}.")

CATEGORICAL: dict[str, dict[str, str]] = {
    "expression": {"neutral": "a person with a neutral expression", "happy": "a person with a happy expression",
                   "sad": "a person with a sad expression", "surprise": "a person with a surprised expression",
                   "anger": "a person with an angry expression", "disgust": "a person with a disgusted expression",
                   "fear": "a person with a fearful expression"},
    "age_group": {"0-2": "a baby", "3-9": "a child", "10-19": "a teenager", "20-29": "a person in their twenties",
                  "30-39": "a person in their thirties", "40-49": "a person in their forties",
                  "50-59": "a person in their fifties", "60-69": "a person in their sixties",
                  "70+": "a person over seventy years old"},
    "gender_presentation": {"feminine": "a feminine-presenting person", "masculine": "a masculine-presenting person"},
    "skin_tone": {"1": "a person with very light skin", "2": "a person with light skin",
                  "3": "a person with light brown skin", "4": "a person with medium brown skin",
                  "5": "a person with dark brown skin", "6": "a person with very dark skin"},
    "hair_color": {c: f"a person with {c} hair" for c in ("black", "brown", "blond", "red", "gray", "white")},
    "hair_length": {"bald": "a bald person", "short": "a person with short hair",
                    "medium": "a person with medium-length hair", "long": "a person with long hair"},
}

BINARY: dict[str, tuple[str, str]] = {
    "Male": ("a man", "a woman"),
    "Young": ("a young person", "an old person"),
    "Smiling": ("a smiling person", "a person who is not smiling"),
    "Blurry": ("a person, blurry", "a person, sharp and in focus"),
    "Bald": ("a bald person", "a person with hair"),
    "Chubby": ("a chubby person", "a slim person"),
    "Pale_Skin": ("a person with pale skin", "a person with tanned skin"),
    "No_Beard": ("a clean-shaven person", "a person with a beard"),
    "Mouth_Slightly_Open": ("a person with the mouth slightly open", "a person with the mouth closed"),
    "Attractive": ("an attractive person", "a plain-looking person"),
    "sunglasses": ("a person wearing sunglasses", "a person not wearing sunglasses"),
    "face_mask": ("a person wearing a face mask", "a person not wearing a face mask"),
}


def phrase(name: str) -> str:
    return name.replace("_", " ").lower()


def binary_phrases(name: str) -> tuple[str, str]:
    """(positive, negative) description of a binary attribute."""
    if name in BINARY:
        return BINARY[name]
    if name.startswith("Wearing_"):
        thing = phrase(name[len("Wearing_"):])
        return f"a person wearing a {thing}", f"a person not wearing a {thing}"
    return f"a person with {phrase(name)}", f"a person without {phrase(name)}"


def categorical_phrases(name: str, value: str) -> tuple[str, str]:
    """(positive, negative) description of one value of a categorical attribute."""
    pos = CATEGORICAL.get(name, {}).get(value) or f"a person with {phrase(name)} {value}"
    neg = pos.replace("a person with ", "a person without ", 1) if pos.startswith("a person with ") else f"not {pos}"
    return pos, neg


def ensemble(description: str, templates: tuple[str, ...] = TEMPLATES) -> list[str]:
    return [t.format(description) for t in templates]
