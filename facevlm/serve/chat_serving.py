"""From a chat request to the model's conversation, and from the model's reply to the gateway's answer.

In: every image of the conversation is checked and decoded here, in the threadpool, with the gateway's
limits (data: URIs through facevlm.image.decode_image; `facevlm://GALLERY/faces/ID` from the gallery's
stored crop; http(s) URLs refused: the gateway fetches nothing). A photo reaches the model the way the
model was trained to see it (`ModelView`), prepared once here for both backends, so the in-process model
and the vLLM engine are given the same pixels. Nothing the chat sends is stored.

Out: when the client passed no `tools`, a `face_search` call of the model is run here on the user's
gallery exactly as POST /v1/faces/search runs it (facevlm.serve.search.run) and becomes one assistant
message: the gateway's own short text plus `facevlm` (the call as executed, the search response, or why
it could not run). The text names a person only by an `identity` the user set in their gallery.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facevlm.data.search_call import TOOL_NAME, SearchCall, tool_schema
from facevlm.errors import FacevlmError
from facevlm.image import decode_image, parse_data_uri
from facevlm.serve import api_models as m
from facevlm.serve import chat_competence as competence
from facevlm.serve import chat_experts
from facevlm.serve.chat_protocol import FACE_REF, ChatRequest
from facevlm.vlm.inference import Reply, View, model_view, view_detector

SCHEMA_DEFAULT_GALLERY = "default"  # what a model trained by `facevlm data qa` always writes: "not named"


@dataclass
class ChatImage:
    """One image of the conversation. Only the last one keeps its decoded pixels and what the face pipeline
    found (`image`, `view`): the expression expert reads the last image (chat_experts), with the box the model
    view found, so the photo is neither decoded nor detected twice; earlier images keep their bytes only."""

    ref: str  # image_N, how a face_search call names it
    data: bytes  # the bytes as sent (or stored): the search decodes them as /v1/faces/search does
    face: tuple[str, str] | None = None  # (gallery, face id) of a facevlm:// reference
    image: Any = None  # the decoded photo (a facevlm:// face: its stored crop)
    view: View | None = None  # the model view of an uploaded photo: its one face's box


@dataclass
class Conversation:
    messages: list[dict[str, Any]]  # for the backend (facevlm.serve.chat_backends.Generation)
    images: list[ChatImage] = field(default_factory=list)


@dataclass
class Outcome:
    """What the gateway makes of one reply: text to add after the model's, the tool calls to return, the
    search results, and the finish reason."""

    tail: str | None = None
    text: str | None = None  # replaces the model's text (the competence gate's "unsure"); None = keep it
    tool_calls: list[dict[str, Any]] | None = None
    facevlm: dict[str, Any] | None = None
    finish: str = "stop"


class Recent(OrderedDict):
    """A dict that keeps only its `size` most recently set keys."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class ModelView:
    """The picture the model sees: with `crop: auto`, a photo with exactly one face becomes that face's
    training crop (the face pipeline), any other photo stays whole so the model can count the faces (the one
    rule, facevlm.vlm.inference.model_view). The outcomes of the `SEEN` last pictures are remembered by a
    digest of their pixels (the box, no pixels), since every turn of a conversation sends its photos again.
    Given the gallery's `experts`, it detects with their detector under their lock (one SSD loaded per
    gateway, and OpenCV's networks are not thread-safe); else it loads its own, behind its own lock."""

    SEEN = 1024

    def __init__(self, crop: str, experts: Any = None):
        self.crop, self.experts, self.pipeline = crop, experts, None
        self.lock = experts.lock if experts is not None else threading.Lock()
        self.seen: Recent = Recent(self.SEEN)

    def __call__(self, image: Any) -> View:
        if self.crop == "never":
            return View(image, None, detected=False)
        with self.lock:
            if self.pipeline is None:
                self.pipeline = view_detector(self.experts.pipeline.detector if self.experts is not None else None)
            return model_view(image, self.pipeline, self.seen)


def check_model(state: Any, model: str) -> None:
    ids = state.config.chat.model_ids()
    if model not in ids:
        raise FacevlmError(
            f"model {model!r} is not a chat model served here; use one of {', '.join(map(repr, ids))}",
            code="model_not_found",
            status_code=404,
        )


def conversation(state: Any, body: ChatRequest) -> Conversation:
    """The backend's conversation (blocking: decoding, gallery reads, face detection)."""
    limit = state.config.chat.max_images
    count = sum(
        1 for msg in body.messages if isinstance(msg.content, list) for p in msg.content if p.type == "image_url"
    )
    if count > limit:
        raise FacevlmError(f"messages: {count} images; at most {limit} per request", code="too_many_images")
    out = Conversation([])
    for i, msg in enumerate(body.messages):
        role = "system" if msg.role == "developer" else msg.role
        turn: dict[str, Any] = {"role": role, "content": _content(state, msg.content, f"messages[{i}]", out)}
        if role == "assistant" and msg.tool_calls:
            turn["tool_calls"] = [c.model_dump() for c in msg.tool_calls]
        if role == "tool":
            turn["tool_call_id"] = msg.tool_call_id
        out.messages.append(turn)
    return out


def _content(state: Any, content: Any, where: str, out: Conversation) -> Any:
    if not isinstance(content, list):
        return content
    parts = []
    for j, part in enumerate(content):
        if part.type == "text":
            parts.append({"type": "text", "text": part.text})
        else:
            image = load_image(state, part.image_url.url, f"{where}.content[{j}].image_url.url", out)
            parts.append({"type": "image", "image": image})
    return parts


def load_image(state: Any, url: str, where: str, out: Conversation) -> Any:
    """Decode one image_url, record it as the conversation's next image_N, return what the model sees."""
    galleries, ref = state.galleries, f"image_{len(out.images) + 1}"
    if url.startswith("data:"):
        if not m.is_image_data_uri(url):
            raise FacevlmError(f"{where}: expected {m.IMAGE_RULE}", code="invalid_image")
        data = parse_data_uri(url, where)
        image = decode_image(data, galleries.limits, where).image
        view = state.chat_view(image)
        _append(out, ChatImage(ref, data, image=image, view=view))
        return view.picture
    face = FACE_REF.match(url)
    if face:
        gallery, face_id = face.group("gallery"), face.group("face_id")
        with galleries.use(gallery) as opened:
            row = opened.gallery.faces([int(face_id)]).get(int(face_id))
            if row is None:
                raise FacevlmError(
                    f"{where}: no face {face_id} in gallery {gallery!r}", code="not_found", status_code=404
                )
            stored = row.crop or row.thumb
            if not stored:
                raise FacevlmError(f"{where}: face {face_id} has no stored crop", code="not_found", status_code=404)
            data = (opened.gallery.root / stored).read_bytes()  # read while held: an erasure waits for us
        image = decode_image(data, galleries.limits, where).image
        _append(out, ChatImage(ref, data, (gallery, face_id), image=image))
        return image  # a stored crop is already the model's view
    if url.startswith(("http://", "https://")):
        raise FacevlmError(
            f"{where}: http(s) image URLs are not fetched; send the image as a data: URI "
            "(data:image/jpeg;base64,...) or name a gallery face as facevlm://GALLERY/faces/ID",
            code="unsupported_image_url",
        )
    raise FacevlmError(
        f"{where}: expected a data: URI or facevlm://GALLERY/faces/ID, got {url[:40]!r}", code="unsupported_image_url"
    )


def _append(out: Conversation, image: ChatImage) -> None:
    """Add the conversation's next image; the one before it drops its pixels (only the last is read again)."""
    if out.images:
        out.images[-1].image = out.images[-1].view = None
    out.images.append(image)


def model_tools(state: Any, body: ChatRequest) -> list[dict[str, Any]]:
    """Tools the model is offered: the client's, else face_search (run by the gateway)."""
    if body.tools:
        return [t.model_dump(exclude_none=True) for t in body.tools]
    return [tool_schema(allow_sensitive=state.config.sensitive_attributes)]


def outcome(state: Any, reply: Reply, conv: Conversation, body: ChatRequest) -> Outcome:
    """What the gateway answers for one reply (blocking: may run a search)."""
    if body.tools:
        if body.tool_choice == "none" or not reply.tool_calls:
            return gated(state, reply, conv, body)
        return Outcome(tool_calls=reply.tool_calls, finish="tool_calls")
    searches = [c for c in reply.tool_calls if c.get("function", {}).get("name") == TOOL_NAME]
    if not searches:  # no client tools: OpenAI never answers tool_calls, and other tools do not exist here
        return gated(state, reply, conv, body)
    results = run_search(state, searches[0], conv, body)
    return Outcome(tail=results.pop("text"), facevlm=results, finish="stop")


def gated(state: Any, reply: Reply, conv: Conversation, body: ChatRequest) -> Outcome:
    """A text answer, replaced by "unsure" where the model is not trusted on what it is about
    (facevlm.serve.chat_competence; `state.chat_competence` is None when the gate is off)."""
    out = Outcome(finish="stop" if reply.finish_reason == "tool_calls" else reply.finish_reason)
    tables = getattr(state, "chat_competence", None)
    if tables is None:
        return out
    table = tables.get(body.model) or competence.Competence()
    said = competence.unsure(competence.last_question(conv.messages), reply.text, table)
    if said is None:
        return out
    read = chat_experts.readings(state, conv, said["concepts"])
    if read:  # the expert answers what it can; the gate's words stay for the rest
        rest = [c for c in said["concepts"] if c not in {r["concept"] for r in read}]
        texts = [chat_experts.sentence(read), *([competence.unsure_text(rest, table)] if rest else [])]
        said["text"] = " ".join(texts)
    said["expert"] = read  # streamed as is: the same keys as the non-streamed message
    out.text, out.facevlm = said.pop("text"), {"unsure": said}
    return out


def holds_text(state: Any) -> bool:
    """Whether a stream must hold each answer's text until it is complete (the gate reads whole replies)."""
    return getattr(state, "chat_competence", None) is not None


def competence_tables(cfg: Any) -> dict[str, competence.Competence] | None:
    """Each served chat model id's competence table (the model's folder; an adapter's own folder), or None
    when `chat.unsure_below_majority` is off."""
    chat = cfg.chat
    if not chat.unsure_below_majority:
        return None
    from facevlm.serve.chat_backends import adapter_dir
    from facevlm.vlm.build import resolve_source

    tables = {chat.model_id: competence.load(_local_dir(resolve_source(chat.model)))}
    for name, folder in chat.adapters.items():
        tables[name] = competence.load(_local_dir(str(adapter_dir(folder))))
    return tables


def _local_dir(source: str) -> str | None:
    return source if Path(source).is_dir() else None


def joined(text: str | None, tail: str | None) -> str | None:
    return " ".join(t for t in (text, tail) if t) or None


def run_search(state: Any, call: dict[str, Any], conv: Conversation, body: ChatRequest) -> dict[str, Any]:
    """{"text", "tool_call", "search", "error"} for one face_search call of the model."""
    cfg = state.config
    call_id = call.get("id") or f"call_{uuid.uuid4().hex[:24]}"
    executed = {"id": call_id, "type": "function", "function": call["function"]}
    try:
        args = SearchCall.parse(call, allow_sensitive=cfg.sensitive_attributes).arguments_dict()
        named = _raw_arguments(call).get("gallery")
        if named in (None, SCHEMA_DEFAULT_GALLERY):
            args["gallery"] = (body.facevlm and body.facevlm.gallery) or cfg.default_gallery
        face = args["query"].get("face") or {}
        index = _image_index(face.get("image"))
        if index is not None and index < len(conv.images) and conv.images[index].face:
            gallery, face_id = conv.images[index].face
            if gallery == args["gallery"]:  # a face of the searched gallery: by id, so it is not its own hit
                args["query"]["face"] = {"face_id": face_id}
        executed["function"] = {"name": TOOL_NAME, "arguments": json.dumps(args, separators=(",", ":"))}
        from facevlm.serve.search import run

        uploads = [(img.ref, img.data) for img in conv.images]
        response = run(state, args, uploads)
    except FacevlmError as exc:
        message = " ".join(str(exc).split())
        return {
            "text": f"I could not run that search: {message}",
            "tool_call": executed,
            "search": None,
            "error": {"code": exc.code, "message": message},
        }
    search = response.model_dump(mode="json")
    return {"text": describe(response, args), "tool_call": executed, "search": search, "error": None}


def _raw_arguments(call: dict[str, Any]) -> dict[str, Any]:
    raw = call["function"].get("arguments")
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _image_index(ref: str | None) -> int | None:
    return int(ref[6:]) - 1 if ref and ref.startswith("image_") and ref[6:].isdigit() else None


def describe(response: m.SearchResponse, args: dict[str, Any]) -> str:
    """The gateway's sentence about a search. Names come only from the hits' `identity`: labels the user
    gave faces in their own gallery, never anything read from a face."""
    n, gallery, query = len(response.data), response.gallery, args["query"]
    if "text" in query:
        what = f"matching \u201c{query['text']}\u201d"
    elif "edit" in query:
        same = query.get("match") == "same_person"
        what = f"of this person, {query['edit']}" if same else f"like this face, {query['edit']}"
    else:
        same = query.get("match", "same_person") == "same_person"
        what = "that look like the same person" if same else "that look alike"
    if not n:
        return f"I found no faces in gallery {gallery} {what}."
    sentence = f"Here {'is' if n == 1 else 'are'} {n} face{'' if n == 1 else 's'} from gallery {gallery} {what}."
    names = list(dict.fromkeys(h.identity for h in response.data if h.identity))
    if names:
        sentence += f" Labelled in your gallery: {', '.join(names[:5])}{' and others' if len(names) > 5 else ''}."
    return sentence
