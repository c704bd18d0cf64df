"""One record schema for every face source.

A record is ONE FACE: the image it comes from, where it is (box, 5 landmarks), who it is (optional),
and what it looks like, from one fixed attribute vocabulary. Each attribute value says whether it is
ground truth ("gt", from a dataset's own labels or the synthetic renderer) or a pseudo-label ("pseudo",
from a pretrained expert, with its probability and the expert's name), so the two can never be mixed up.

Attributes such as age, gender presentation, skin tone and race are *apparent* (what an annotator or a
model perceives), never a claim about the person. They are marked `sensitive` so a deployment can
switch them off in one place (`drop_sensitive`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

# Identifiers shared by the gallery, the gateway and the `face_search` call, so that all three accept exactly
# the same strings (see facevlm.index.names for why gallery names are this strict).
GALLERY_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
GALLERY_NAME_RULE = "1-64 lowercase ASCII letters, digits, '-' or '_', starting with a letter or digit"
FACE_ID_PATTERN = r"^[0-9]{1,18}$"  # SQLite row ids (< 2**63), ASCII digits only (str.isdigit also takes '²')
# some character that is not whitespace as Python's str.strip() sees it, spelled out so that ECMA (JSON
# schema), Rust (pydantic) and Python regexes agree on it
NON_BLANK_PATTERN = r"[^\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"

CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)

EXPRESSIONS: tuple[str, ...] = ("neutral", "happy", "sad", "surprise", "anger", "disgust", "fear")
AGE_GROUPS: tuple[str, ...] = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")
GENDER_PRESENTATIONS: tuple[str, ...] = ("feminine", "masculine")
SKIN_TONES: tuple[str, ...] = ("1", "2", "3", "4", "5", "6")  # 1 = lightest ... 6 = darkest (Fitzpatrick-like)
RACES: tuple[str, ...] = (  # FairFace's categories, kept only so FairFace loads as distributed
    "White",
    "Black",
    "Latino_Hispanic",
    "East Asian",
    "Southeast Asian",
    "Indian",
    "Middle Eastern",
)
HAIR_COLORS: tuple[str, ...] = ("black", "brown", "blond", "red", "gray", "white")
HAIR_LENGTHS: tuple[str, ...] = ("bald", "short", "medium", "long")

Kind = Literal["binary", "categorical", "numeric"]
Origin = Literal["gt", "pseudo"]


@dataclass(frozen=True)
class AttributeSpec:
    name: str
    kind: Kind
    values: tuple[str, ...] = ()  # categorical values; empty for binary/numeric
    sensitive: bool = False
    group: str = "appearance"  # appearance | expression | demographics | pose | accessories | hair | facial_hair
    description: str = ""


def _celeba_group(name: str) -> str:
    if name in (
        "Eyeglasses",
        "Wearing_Earrings",
        "Wearing_Hat",
        "Wearing_Lipstick",
        "Wearing_Necklace",
        "Wearing_Necktie",
        "Heavy_Makeup",
    ):
        return "accessories"
    if name in ("5_o_Clock_Shadow", "Goatee", "Mustache", "No_Beard", "Sideburns"):
        return "facial_hair"
    if name.endswith("_Hair") or name in ("Bald", "Bangs", "Receding_Hairline"):
        return "hair"
    if name in ("Smiling", "Mouth_Slightly_Open"):
        return "expression"
    if name in ("Male", "Young"):
        return "demographics"
    return "appearance"


VOCABULARY: dict[str, AttributeSpec] = {
    **{
        n: AttributeSpec(
            n,
            "binary",
            sensitive=n in ("Male", "Young", "Attractive", "Pale_Skin"),
            group=_celeba_group(n),
            description=f"CelebA attribute {n}",
        )
        for n in CELEBA_ATTRIBUTES
    },
    "expression": AttributeSpec("expression", "categorical", EXPRESSIONS, group="expression"),
    "age": AttributeSpec("age", "numeric", sensitive=True, group="demographics", description="apparent age, years"),
    "age_group": AttributeSpec("age_group", "categorical", AGE_GROUPS, sensitive=True, group="demographics"),
    "gender_presentation": AttributeSpec(
        "gender_presentation", "categorical", GENDER_PRESENTATIONS, sensitive=True, group="demographics"
    ),
    "skin_tone": AttributeSpec("skin_tone", "categorical", SKIN_TONES, sensitive=True, group="demographics"),
    "race": AttributeSpec(
        "race",
        "categorical",
        RACES,
        sensitive=True,
        group="demographics",
        description="FairFace's apparent race label; off by default in captions and QA",
    ),
    "yaw": AttributeSpec("yaw", "numeric", group="pose", description="head yaw, degrees, + = subject's left"),
    "pitch": AttributeSpec("pitch", "numeric", group="pose", description="head pitch, degrees, + = up"),
    "roll": AttributeSpec("roll", "numeric", group="pose", description="head roll, degrees"),
    "sunglasses": AttributeSpec("sunglasses", "binary", group="accessories"),
    "face_mask": AttributeSpec("face_mask", "binary", group="accessories"),
    "hair_color": AttributeSpec("hair_color", "categorical", HAIR_COLORS, group="hair"),
    "hair_length": AttributeSpec("hair_length", "categorical", HAIR_LENGTHS, group="hair"),
}

SENSITIVE: frozenset[str] = frozenset(n for n, s in VOCABULARY.items() if s.sensitive)


def age_to_group(age: float) -> str:
    """FairFace's age bins; the group is what captions and fairness reports use."""
    bounds = [
        (2, "0-2"),
        (9, "3-9"),
        (19, "10-19"),
        (29, "20-29"),
        (39, "30-39"),
        (49, "40-49"),
        (59, "50-59"),
        (69, "60-69"),
    ]
    for upper, name in bounds:
        if age <= upper:
            return name
    return "70+"


@dataclass
class AttributeValue:
    """One labelled attribute of one face. `value` is a string in the spec's canonical form:
    "true"/"false" for binary, one of `values` for categorical, a decimal for numeric."""

    name: str
    value: str
    origin: Origin = "gt"
    prob: float = 1.0  # probability of `value` (1.0 for ground truth)
    model: str = ""  # the expert that produced a pseudo-label

    def __post_init__(self) -> None:
        self.value = canonical_value(self.name, self.value)
        if self.origin not in ("gt", "pseudo"):
            raise ValueError(f"origin must be 'gt' or 'pseudo', not {self.origin!r}")
        if not 0.0 <= float(self.prob) <= 1.0:
            raise ValueError(f"{self.name}: probability {self.prob} outside [0, 1]")


def canonical_value(name: str, value: Any) -> str:
    """Validate `value` against the vocabulary and return its canonical string."""
    spec = VOCABULARY.get(name)
    if spec is None:
        raise ValueError(f"unknown attribute {name!r} (not in facevlm.schema.VOCABULARY)")
    if spec.kind == "binary":
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "y", "t"):
            return "true"
        if text in ("0", "-1", "false", "no", "n", "f"):
            return "false"
        raise ValueError(f"{name}: {value!r} is not a binary value")
    if spec.kind == "numeric":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: {value!r} is not a number") from None
        return f"{number:g}"
    text = str(value)
    if text not in spec.values:
        raise ValueError(f"{name}: {value!r} not one of {', '.join(spec.values)}")
    return text


@dataclass
class FaceRecord:
    """One face. `image` is a PIL image (or a path/bytes while loading); `box` is [x0, y0, x1, y1] in
    image pixels (None: the image is already a face crop); `landmarks` are 5 points (eyes, nose, mouth
    corners) in image pixels or empty."""

    id: str
    image: Any
    source: str
    licence: str
    image_key: str = ""  # groups the faces of one source image
    box: list[float] | None = None
    landmarks: list[list[float]] = field(default_factory=list)
    det_score: float = 1.0
    n_faces: int = 1
    identity: str | None = None
    attributes: list[AttributeValue] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    split: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # source-specific extras, JSON-serialisable

    def attrs(self, origin: Origin | None = None) -> dict[str, AttributeValue]:
        return {a.name: a for a in self.attributes if origin is None or a.origin == origin}

    def get(self, name: str) -> str | None:
        value = self.attrs().get(name)
        return value.value if value else None

    def set(self, name: str, value: Any, origin: Origin = "gt", prob: float = 1.0, model: str = "") -> None:
        """Add or replace an attribute. A pseudo-label never overwrites ground truth."""
        current = self.attrs().get(name)
        if current is not None and current.origin == "gt" and origin == "pseudo":
            return
        self.attributes = [a for a in self.attributes if a.name != name]
        self.attributes.append(AttributeValue(name, value, origin, prob, model))


def drop_sensitive(attributes: Iterable[AttributeValue], enabled: bool = False) -> list[AttributeValue]:
    """The one switch for sensitive attributes: unless `enabled`, they are removed."""
    return [a for a in attributes if enabled or a.name not in SENSITIVE]


def hf_features():
    """The `datasets.Features` of a stored face record (import-time light: datasets loaded lazily)."""
    from datasets import Features, Image, Sequence, Value

    return Features(
        {
            "id": Value("string"),
            "image": Image(),
            "source": Value("string"),
            "licence": Value("string"),
            "image_key": Value("string"),
            "box": Sequence(Value("float32")),  # empty list = whole image is the face
            "landmarks": Sequence(Sequence(Value("float32"))),
            "det_score": Value("float32"),
            "n_faces": Value("int32"),
            "identity": Value("string"),
            "attributes": [
                {
                    "name": Value("string"),
                    "value": Value("string"),
                    "origin": Value("string"),
                    "prob": Value("float32"),
                    "model": Value("string"),
                }
            ],
            "captions": Sequence(Value("string")),
            "split": Value("string"),
            "meta": Value("string"),  # JSON
        }
    )


def to_row(record: FaceRecord) -> dict[str, Any]:
    """A FaceRecord as a row of `hf_features()`."""
    import json

    return {
        "id": record.id,
        "image": record.image,
        "source": record.source,
        "licence": record.licence,
        "image_key": record.image_key or record.id,
        "box": list(record.box) if record.box is not None else [],
        "landmarks": [list(p) for p in record.landmarks],
        "det_score": float(record.det_score),
        "n_faces": int(record.n_faces),
        "identity": record.identity,
        "attributes": [
            {"name": a.name, "value": a.value, "origin": a.origin, "prob": float(a.prob), "model": a.model}
            for a in record.attributes
        ],
        "captions": list(record.captions),
        "split": record.split,
        "meta": json.dumps(record.meta, sort_keys=True),
    }


def from_row(row: dict[str, Any]) -> FaceRecord:
    """Inverse of `to_row` (the image stays whatever `datasets` decoded: a PIL image)."""
    import json

    return FaceRecord(
        id=row["id"],
        image=row["image"],
        source=row["source"],
        licence=row["licence"],
        image_key=row.get("image_key") or row["id"],
        box=list(row["box"]) if row.get("box") else None,
        landmarks=[list(p) for p in row.get("landmarks") or []],
        det_score=float(row.get("det_score", 1.0)),
        n_faces=int(row.get("n_faces", 1)),
        identity=row.get("identity"),
        attributes=[AttributeValue(**a) for a in row.get("attributes") or []],
        captions=list(row.get("captions") or []),
        split=row.get("split", ""),
        meta=json.loads(row.get("meta") or "{}"),
    )
