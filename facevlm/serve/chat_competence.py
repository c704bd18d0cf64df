"""The chat gateway says it is unsure where its model has not been shown to beat the majority guess.

A face VLM tuned on rendered faces can sound sure of things it cannot see on real photos (docs/benchmarks.md,
"FaceVLM on the real dev split"). So every text reply is read by the data engine's fact reader
(facevlm.data.facts.find_claims, the same reader that grades the benchmark) together with the user's last
question, and when either is about an attribute the model is not trusted on, the reply is replaced by a
plain "I can't tell reliably" (the wording below) naming the evidence. Trust comes from
`<model folder>/competence.json`, written by `facevlm eval competence` from the real-dev benchmark
(facevlm.eval.competence): a model with no table is trusted on nothing. Replies that are not about face
attributes (counting faces, "I can't see a face", small talk) and face_search calls pass unchanged.
`chat.unsure_below_majority: false` switches the gate off (researchers comparing raw model output).

The model's own words stay available in the response's `facevlm.unsure.model_reply`, so nothing is hidden
from a client that wants to see it; the chat UI shows the gateway's text.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facevlm.data.facts import find_claims
from facevlm.data.lexicon import concept_name
from facevlm.eval.competence import FILE

log = logging.getLogger("facevlm.serve")

# One wording table for the gate (what the gateway says instead of an unbacked answer).
WORDING = {
    "unsure": "I can't tell {what} reliably from a photo yet, so I won't guess.",
    "measured": (
        "On hand-labelled real faces this model's answers about {what} were not better than always giving "
        "the most common answer."
    ),
    "unmeasured": "This model has not been checked against hand-labelled real faces for {what}.",
}


@dataclass
class Competence:
    """A model's competence table (facevlm.eval.competence): concept -> its row; `trusted` concepts pass."""

    concepts: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""

    def trusted(self, concept: str) -> bool:
        return bool(self.concepts.get(concept, {}).get("trusted"))


def load(model_dir: str | Path | None) -> Competence:
    """The table beside a model folder; none (or unreadable) = trusted on nothing, with one log line."""
    path = Path(model_dir) / FILE if model_dir else None
    if path is None or not path.is_file():
        log.info(
            "chat: no %s for %s: attribute answers will say unsure (measure: facevlm eval run eval/real.yaml "
            "--tasks vqa --out DIR && facevlm eval competence DIR)",
            FILE,
            model_dir or "this model",
        )
        return Competence()
    try:
        data = json.loads(path.read_text())
        concepts = {str(k): dict(v) for k, v in data["concepts"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("chat: %s is unreadable (%s): attribute answers will say unsure", path, exc)
        return Competence()
    return Competence(concepts, str(path))


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def unsure(question: str, reply: str | None, table: Competence) -> dict[str, Any] | None:
    """None when the reply may be shown; else {"text", "concepts", "model_reply"} for the gateway to send.

    Both texts are read: "Is she wearing glasses?" -> "Yes." carries its concept in the question, "Describe
    her" -> "She has black hair and glasses" in the reply."""
    if not reply:
        return None
    claims = find_claims(question or "") + find_claims(reply)
    concepts = list(dict.fromkeys(c.concept for c in claims if not table.trusted(c.concept)))
    if not concepts:
        return None
    return {
        "text": unsure_text(concepts, table),
        "concepts": concepts,
        "model_reply": reply,
        "evidence": table.source or None,
    }


def unsure_text(concepts: list[str], table: Competence) -> str:
    """What the gateway says instead of the model's answer about `concepts`."""
    what = _listed([concept_name(c) for c in concepts])
    measured = [c for c in concepts if c in table.concepts]
    parts = [WORDING["unsure"].format(what=what)]
    if measured:
        parts.append(WORDING["measured"].format(what=_listed([concept_name(c) for c in measured])))
    unmeasured = [c for c in concepts if c not in table.concepts]
    if unmeasured:
        parts.append(WORDING["unmeasured"].format(what=_listed([concept_name(c) for c in unmeasured])))
    return " ".join(parts)


def last_question(messages: list[dict[str, Any]]) -> str:
    """The text of the conversation's last user turn (what the reply answers)."""
    for msg in reversed(messages):
        if msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return content
        return " ".join(p.get("text", "") for p in content or [] if p.get("type") == "text")
    return ""
