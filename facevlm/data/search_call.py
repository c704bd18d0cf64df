"""The structured face-search call: what a VLM emits when a user asks to find faces in their gallery.

It is an OpenAI function/tool call named `face_search`, so any OpenAI-compatible stack can carry it:
the QA generator (qa.py) writes it as the assistant's `tool_calls` answer to retrieval requests, the
fine-tuned VLM learns to emit it, vLLM can constrain decoding with `tool_schema()`, and the gallery's
search executor runs it. The same pydantic models validate at every hop, so one schema is the contract.

Three query kinds (see docs/search-call.md): free text; a face (a gallery face id or an image of the
chat) matched as the same person or a look-alike; or a composed query, a face plus a text edit
("smiling"), as in training-free composed retrieval (PDV). Filters use the record attribute
vocabulary; sensitive attributes are refused unless the caller allows them. `version` lets later
schemas change without silently misreading old calls.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from facevlm.errors import FacevlmError
from facevlm.schema import (
    FACE_ID_PATTERN,
    GALLERY_NAME_PATTERN,
    GALLERY_NAME_RULE,
    NON_BLANK_PATTERN,
    SENSITIVE,
    VOCABULARY,
    canonical_value,
)

SCHEMA_VERSION = 1
TOOL_NAME = "face_search"
TOOL_DESCRIPTION = (
    "Search the user's face gallery. Use it for requests to find photos of a person, people who look "
    "like someone, or faces matching a description; never name a person from their face yourself."
)
IMAGE_PREFIXES = (
    "data:image/png;base64,",
    "data:image/jpeg;base64,",
    "data:image/jpg;base64,",
    "data:image/webp;base64,",
)
FILTERABLE = tuple(n for n, s in VOCABULARY.items() if s.kind != "numeric")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaceRef(_Strict):
    """A face: already in the gallery (`face_id`) or in the conversation (`image`)."""

    face_id: str | None = Field(None, pattern=FACE_ID_PATTERN, description="id of a face in the gallery (digits)")
    image: str | None = Field(
        None, description="'image_N' for the N-th image of the chat (1-based), or a data: URI (png/jpeg/webp, base64)"
    )

    @field_validator("image")
    @classmethod
    def _image_ref(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if v.startswith("image_") and v[6:].isdigit() and int(v[6:]) >= 1:
            return v
        if v.startswith(IMAGE_PREFIXES) and len(v) > 30:
            return v
        raise ValueError("must be 'image_N' (N >= 1) or a base64 data:image/... URI")

    @model_validator(mode="after")
    def _exactly_one(self) -> FaceRef:
        if (self.face_id is None) == (self.image is None):
            raise ValueError("give exactly one of face_id or image")
        return self


class TextQuery(_Strict):
    text: str = Field(min_length=1, max_length=500, pattern=NON_BLANK_PATTERN, description="what the faces look like")


class FaceQuery(_Strict):
    face: FaceRef
    match: Literal["same_person", "look_alike"] = Field(
        "same_person", description="same_person: this identity; look_alike: faces that look similar"
    )


class ComposedQuery(_Strict):
    face: FaceRef
    edit: str = Field(min_length=1, max_length=200, description="the change to apply, e.g. 'smiling'")
    edit_weight: float | None = Field(None, ge=0.0, le=2.0, description="strength of the edit (default: executor's)")
    match: Literal["same_person", "look_alike"] = "look_alike"


def _query_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        return "text" if "text" in v else "composed" if "edit" in v else "face" if "face" in v else None
    return {TextQuery: "text", FaceQuery: "face", ComposedQuery: "composed"}.get(type(v))


Query = Annotated[
    Annotated[TextQuery, Tag("text")] | Annotated[FaceQuery, Tag("face")] | Annotated[ComposedQuery, Tag("composed")],
    Discriminator(
        _query_kind,
        custom_error_type="query_kind",
        custom_error_message="query needs 'text', or 'face' (+ 'match'), or 'face' + 'edit'",
    ),
]


def _filter_field(name: str) -> tuple[Any, Any]:
    spec = VOCABULARY[name]
    one: Any = bool if spec.kind == "binary" else Literal[spec.values]  # type: ignore[valid-type]
    desc = ("apparent; " if spec.sensitive else "") + (spec.description or spec.group)
    return (one | list[one] | None, Field(None, alias=name, description=desc))


class _FilterBase(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key == "min_prob" or key in FILTERABLE:
                    continue
                if key in VOCABULARY:
                    raise ValueError(f"{key!r} is numeric and cannot be filtered; use age_group or a text query")
                raise ValueError(f"unknown attribute {key!r} (see facevlm.schema.VOCABULARY)")
        return data


Filters = create_model(  # one optional field per filterable attribute, named by alias (CelebA names start with digits)
    "Filters",
    __base__=_FilterBase,
    min_prob=(float | None, Field(None, ge=0.0, le=1.0, description="ignore pseudo-labels below this probability")),
    **{f"a{i}": _filter_field(n) for i, n in enumerate(FILTERABLE)},
)
Filters.__doc__ = "Attribute filters: a value, or a list of accepted values, per attribute."


class SearchArguments(_Strict):
    version: Literal[1] = SCHEMA_VERSION
    gallery: str = Field("default", pattern=GALLERY_NAME_PATTERN, description=f"gallery name: {GALLERY_NAME_RULE}")
    query: Query
    filters: Filters = Field(default_factory=Filters)  # type: ignore[valid-type]
    top_k: int = Field(10, ge=1, le=100)

    @field_validator("version", mode="before")
    @classmethod
    def _not_a_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):  # `true` == 1 in Python, so Literal[1] alone would take it; JSON's const does not
            raise ValueError("must be 1")
        return v


class SearchCall(_Strict):
    """One `face_search` call. Build from a model's output with `SearchCall.parse`."""

    name: Literal["face_search"] = TOOL_NAME
    arguments: SearchArguments

    @classmethod
    def parse(cls, data: str | bytes | dict[str, Any], *, allow_sensitive: bool = False) -> SearchCall:
        """Accept an OpenAI tool_calls item, {"name", "arguments"}, or the bare arguments (dict or JSON);
        arguments may be a JSON string as OpenAI sends them. Raises FacevlmError with one line."""
        obj = _loads(data, "search call")
        if isinstance(obj, dict) and isinstance(obj.get("function"), dict):
            obj = obj["function"]
        if isinstance(obj, dict) and "arguments" in obj:
            if obj.get("name", TOOL_NAME) != TOOL_NAME:
                raise FacevlmError(f"search call: name must be {TOOL_NAME!r}, not {obj.get('name')!r}")
            obj = {"name": TOOL_NAME, "arguments": _loads(obj["arguments"], "search call arguments")}
        else:
            obj = {"name": TOOL_NAME, "arguments": obj}
        try:
            call = cls.model_validate(obj)
        except ValidationError as exc:
            raise FacevlmError(f"search call: {_one_line(exc)}") from None
        if not allow_sensitive:
            bad = sorted(set(call.filter_values()) & SENSITIVE)
            if bad:
                raise FacevlmError(
                    f"search call: arguments.filters.{bad[0]}: filtering on sensitive attributes is disabled"
                )
        return call

    def arguments_dict(self) -> dict[str, Any]:
        return self.arguments.model_dump(mode="json", by_alias=True, exclude_none=True)

    def arguments_json(self) -> str:
        return json.dumps(self.arguments_dict(), separators=(",", ":"), sort_keys=True)

    def to_tool_call(self, call_id: str | None = None) -> dict[str, Any]:
        """An OpenAI `tool_calls` item; the id is a content hash unless given, so datasets are deterministic."""
        args = self.arguments_json()
        cid = call_id or "call_" + hashlib.sha1(args.encode()).hexdigest()[:24]
        return {"id": cid, "type": "function", "function": {"name": TOOL_NAME, "arguments": args}}

    def filter_values(self) -> dict[str, list[str]]:
        """Filters as canonical schema strings ("true"/"false", categorical values), lists always."""
        out: dict[str, list[str]] = {}
        for key, value in self.arguments.filters.model_dump(by_alias=True, exclude_none=True).items():
            if key != "min_prob":
                out[key] = [canonical_value(key, v) for v in (value if isinstance(value, list) else [value])]
        return out


def _loads(data: Any, what: str) -> Any:
    if isinstance(data, (str, bytes)):
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            raise FacevlmError(f"{what}: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})") from None
    return data


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc: list[str] = []
    for i, part in enumerate(err["loc"]):  # drop union-branch labels pydantic inserts into the path
        if (i and err["loc"][i - 1] == "query" and part in ("text", "face", "composed")) or (
            isinstance(part, str)
            and (part in ("bool", "function-after[_exactly_one(), FaceRef]") or part.startswith(("literal[", "list[")))
        ):
            continue
        loc.append(str(part))
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{'.'.join(loc) or 'call'}: {msg}{more}"


@lru_cache(maxsize=2)
def _parameters(allow_sensitive: bool) -> str:
    schema = SearchArguments.model_json_schema(by_alias=True)
    if not allow_sensitive:
        props = schema["$defs"]["Filters"]["properties"]
        for name in SENSITIVE & set(props):
            del props[name]
    schema["description"] = f"face_search arguments, schema version {SCHEMA_VERSION}"
    # the branches exclude each other (required keys, no extra keys), so anyOf == oneOf; anyOf is
    # what OpenAI strict mode and grammar-constrained decoders (xgrammar, outlines) support best
    return json.dumps(schema).replace('"oneOf"', '"anyOf"')


def tool_schema(allow_sensitive: bool = False) -> dict[str, Any]:
    """The OpenAI `tools` entry (JSON schema of the arguments; sensitive filters left out by default)."""
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": TOOL_DESCRIPTION,
            "parameters": json.loads(_parameters(allow_sensitive)),
        },
    }


def json_schema() -> dict[str, Any]:
    """JSON schema of a whole call, with an $id naming the version (for docs and external validators)."""
    schema = SearchCall.model_json_schema(by_alias=True)
    schema["$id"] = f"urn:facevlm:face_search:v{SCHEMA_VERSION}"
    return schema
