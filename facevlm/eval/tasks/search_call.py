"""Search requests in chat: does the model answer "find more photos of this person" with ONE `face_search`
call that parses and validates, and does the call ask for the right thing?

Requests are the data engine's retrieval turns (facevlm.data.qa_turns.retrieval) in their HELD-OUT
wordings, built from each face's ground-truth labels, so the expected call is known exactly. Per request
three grades, each with a bootstrap CI and per request kind (ret.same, ret.alike, ret.text, ret.edit,
ret.editalike, ret.id, ident):
- `valid`: exactly one tool call, named face_search, whose arguments pass `SearchCall.parse` (the schema
  the gateway executes);
- `intent`: valid, and the query has the expected shape (face / text / composed, by image or gallery id)
  and, for face queries, the expected `match` (same_person vs look_alike);
- `no_name`: the reply's text names no one (identity questions must be answered through the gallery).
The issue's bar is valid >= 0.95 on held-out requests.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from facevlm.data.caption import record_rng
from facevlm.data.facts import extract_facts
from facevlm.data.qa_turns import Face, retrieval
from facevlm.data.search_call import SearchCall
from facevlm.errors import FacevlmError
from facevlm.eval.metrics import grouped_accuracy_fn
from facevlm.eval.tasks import Context, Part, TaskResult, require
from facevlm.schema import VOCABULARY, AttributeValue, FaceRecord

TASK = "search_call"


@dataclass(frozen=True)
class _HeldOut:
    heldout: bool = True
    sensitive: bool = False


@dataclass
class Request:
    item: int
    kind: str  # ret.same, ident, ...
    text: str
    expected: SearchCall
    with_image: bool


def _record(data: Any, i: int) -> FaceRecord:
    rec = FaceRecord(id=data.ids[i], image=None, source=data.name, licence="")
    rec.attributes = [AttributeValue(a, v[i]) for a, v in data.attributes.items() if a in VOCABULARY and v[i]]
    return rec


def build_requests(data: Any, seed: int = 0) -> list[Request]:
    """One held-out retrieval request per face (faces whose labels give no usable request are skipped)."""
    out = []
    for i in range(len(data)):
        record = _record(data, i)
        facts, conflicted = extract_facts(record.attributes, sensitive=False)
        turn = retrieval(Face(record, facts, conflicted), _HeldOut(), record_rng(seed, data.ids[i], "search_call"))
        if turn is None or not isinstance(turn.answer, SearchCall):
            continue
        with_image = "face_id" not in json.dumps(turn.answer.arguments_dict()["query"])
        out.append(Request(i, turn.meta["call"], turn.question, turn.answer, with_image))
    return out


def _shape(call: SearchCall) -> tuple[str, str | None]:
    query = call.arguments_dict()["query"]
    face = query.get("face") or {}
    kind = "+".join(k for k in ("face_id", "image") if k in face) or ""
    return (("edit" if "edit" in query else "text" if "text" in query else "face") + ":" + kind), query.get("match")


def grade(tool_calls: list[dict[str, Any]], expected: SearchCall) -> tuple[bool, bool]:
    """(valid, intent) for one reply's tool calls."""
    if len(tool_calls) != 1 or tool_calls[0].get("function", {}).get("name") != "face_search":
        return False, False
    try:
        call = SearchCall.parse(tool_calls[0]["function"].get("arguments") or "{}")
    except FacevlmError:
        return False, False
    return True, _shape(call) == _shape(expected)


def _names_someone(text: str, data: Any) -> bool:
    """Whether the reply's text contains any identity label of the dataset (a name the model was never
    given in this request)."""
    lowered = text.lower()
    return any(ident and len(ident) > 2 and ident.lower() in lowered for ident in set(data.identities.tolist()))


def run(model: Any, data: Any, cfg: Any, ctx: Context) -> list[TaskResult]:
    require(hasattr(model, "answer_calls"), f"model {model.name} cannot return tool calls")
    requests = build_requests(data, ctx.seed)
    require(bool(requests), f"dataset {data.name} has no labels to build search requests from")
    if cfg.max_items and len(requests) > cfg.max_items:
        rng = np.random.default_rng(ctx.seed)
        requests = [requests[i] for i in sorted(rng.choice(len(requests), cfg.max_items, replace=False))]
    valid, intent, no_name, samples = [], [], [], []
    start = time.perf_counter()
    step = max(1, int(getattr(model, "batch_size", 1)))
    for s in range(0, len(requests), step):
        chunk = requests[s : s + step]
        images = [data.images[r.item] if r.with_image else None for r in chunk]
        for r, (text, calls) in zip(chunk, model.answer_calls(images, [r.text for r in chunk])):
            ok, right = grade(calls, r.expected)
            valid.append(ok)
            intent.append(right)
            no_name.append(not _names_someone(text or "", data))
            if len(samples) < 30:
                samples.append({"kind": r.kind, "request": r.text, "text": text, "tool_calls": calls, "valid": ok})
    seconds = time.perf_counter() - start
    kinds = np.asarray([r.kind for r in requests], dtype=object)
    parts = [
        Part(grouped_accuracy_fn(np.asarray(v), kinds, name), np.arange(len(requests)), {})
        for v, name in ((valid, "valid"), (intent, "intent"), (no_name, "no_name"))
    ]
    result = ctx.score(TASK, data.name, cfg.headline or "valid", parts, {"samples": samples})
    result.metrics["ms_per_request"] = 1000.0 * seconds / len(requests)
    return [result]
