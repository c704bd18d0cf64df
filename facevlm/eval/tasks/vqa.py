"""VQA for chat models: each face is asked about its ground-truth attributes in the data engine's
HELD-OUT question wordings, and each reply is graded by the data engine's fact checker.

One wording table per purpose: the questions are `facevlm.data.qa_templates`' held-out templates (never
seen in tuning data, so the score measures generalisation to new phrasings), asked through the same
builders that write the training turns; the grader is `facevlm.data.facts.check`, the contract every
caption and QA answer is generated against, so any phrasing the lexicon accepts ("grinning", "blonde
hair", "they seem to be smiling") is right and any that contradicts a label is wrong. A yes/no reply is
read as the asked clause (negated for "no") followed by the reply, so "No, they have brown hair" asserts
both. Binary attributes get yes/no questions (answer "yes" when the label is true), categorical ones
open questions. Sensitive attributes are asked about only when a suite names them (schema.SENSITIVE);
concepts the data engine never asks about (skin tone, race) have no held-out question and are refused.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from facevlm.data.caption import clause, record_rng
from facevlm.data.facts import CheckResult, Fact, check, extract_facts, phrases
from facevlm.data.lexicon import LEXICON
from facevlm.data.qa_templates import TEMPLATES, UNASKED, open_question_text, yes_no_question
from facevlm.errors import FacevlmError
from facevlm.eval.metrics import grouped_accuracy_fn, normalize_answer
from facevlm.eval.tasks import Context, Part, TaskResult, require
from facevlm.schema import SENSITIVE, VOCABULARY, AttributeValue

TASK = "vqa"


@dataclass(frozen=True)
class HeldOut:
    """The question config of evaluation: held-out templates; sensitive concepts may be asked when named."""

    heldout: bool = True
    sensitive: bool = True


@dataclass
class Question:
    item: int
    kind: str  # question type = attribute name
    template: str  # qa_templates id, "<kind>.h<n>"
    text: str
    truth: Fact  # what the label says
    known: list[Fact]  # every confident fact of the face: a reply may not contradict any
    asked: Fact | None = None  # yes/no questions: the fact asked about
    answer: str = ""  # the expected short answer: "yes" / "no" / the labelled value


def label_fact(attribute: str, value: str) -> Fact | None:
    """The fact a ground-truth label states, as the data engine reads it (facts.extract_facts)."""
    facts, _ = extract_facts([AttributeValue(attribute, value)], sensitive=True)
    return facts[0] if facts else None


def asked_fact(attribute: str) -> Fact | None:
    """What a yes/no question about binary `attribute` asks: the positive side of its concept
    (No_Beard asks about a beard; Black_Hair about black hair)."""
    fact = label_fact(attribute, "true")
    if fact is None:
        return None
    return replace(fact, value="true", positive=True) if LEXICON[fact.concept][0] == "binary" else fact


def askable(attribute: str) -> bool:
    """Whether the held-out templates have a question for `attribute` (the data engine's rules: no
    UNASKED concept, a stated phrase for yes/no, an "open.<concept>" kind for open questions)."""
    spec = VOCABULARY.get(attribute)
    if spec is None or spec.kind == "numeric":
        return False
    fact = asked_fact(attribute) if spec.kind == "binary" else label_fact(attribute, spec.values[0])
    if fact is None or fact.concept in UNASKED:
        return False
    return bool(phrases(fact)[0]) if spec.kind == "binary" else f"open.{fact.concept}" in TEMPLATES


def concept_of(attribute: str) -> str | None:
    """The data engine's concept a question type (= attribute) asks about: Eyeglasses -> eyeglasses,
    No_Beard -> beard, expression -> expression. What the chat gateway's competence gate keys on, since
    a user's question and the model's reply are read as concepts (facts.find_claims)."""
    spec = VOCABULARY.get(attribute)
    if spec is None or spec.kind == "numeric":
        return None
    fact = asked_fact(attribute) if spec.kind == "binary" else label_fact(attribute, spec.values[0])
    return fact.concept if fact is not None else None


def polarity(reply: str) -> str | None:
    """ "yes" / "no" when the reply opens with one (or a synonym: "yeah", "nope"...), else None."""
    words = normalize_answer(reply).split()
    return words[0] if words and words[0] in ("yes", "no") else None


def statement(reply: str, q: Question) -> str:
    """The reply as text the fact checker reads: a leading yes/no to a yes/no question becomes the
    asked clause, negated for no ("they are smiling. Yes, I think so.")."""
    said = polarity(reply) if q.asked is not None else None
    if said is None:
        return reply
    return f"{clause(q.asked, random.Random(0), negate=said == 'no')}. {reply}"


def grade(reply: str, q: Question) -> CheckResult:
    """facts.check on the reply: the labelled fact must be stated and no known fact contradicted.
    Not strict: a reply may mention things the labels are silent about."""
    return check(statement(reply, q), [q.truth], q.known, strict=False)


def _face_facts(data: Any, item: int) -> tuple[list[Fact], set[str]]:
    attrs = [AttributeValue(a, v[item]) for a, v in data.attributes.items() if a in VOCABULARY and v[item]]
    return extract_facts(attrs, sensitive=True)


def build_questions(data: Any, attributes: list[str], seed: int = 0) -> list[Question]:
    """One question per labelled (face, attribute); faces whose labels conflict on the concept are
    left out (the data engine says nothing about such a concept either)."""
    bad = [a for a in attributes if not askable(a)]
    if bad:
        raise FacevlmError(f"vqa: no held-out question for {', '.join(bad)} in facevlm/data/qa_templates.py")
    out: list[Question] = []
    for i in range(len(data)):
        known, conflicted = _face_facts(data, i)
        for attribute in attributes:
            value = data.labels(attribute)[i]
            truth = label_fact(attribute, value) if value else None
            if truth is None or truth.concept in conflicted:
                continue
            rng = record_rng(seed, data.ids[i], f"vqa:{attribute}")
            if VOCABULARY[attribute].kind == "binary":
                asked = asked_fact(attribute)
                assert asked is not None  # askable()
                tid, text = yes_no_question(asked, HeldOut(), rng)
                yes = (truth.concept, truth.value, truth.positive) == (asked.concept, asked.value, asked.positive)
                out.append(Question(i, attribute, tid, text, truth, known, asked, "yes" if yes else "no"))
            else:
                tid, text = open_question_text(truth.concept, HeldOut(), rng)
                out.append(Question(i, attribute, tid, text, truth, known, answer=value))
    return out


def default_attributes(data: Any) -> list[str]:
    return [a for a in data.attributes if a not in SENSITIVE and askable(a) and (data.labels(a) != "").any()]


def majority_reply(q: Question, value: str | None) -> str:
    """What the majority baseline says: for a yes/no question, "yes" when the majority label states the
    asked fact, else "no"; for an open question, the majority value's clause. The bar every chat model
    has to clear per question type."""
    if value is None:
        return ""
    fact = label_fact(q.kind, value)
    if fact is None:
        return ""
    if q.asked is not None:
        yes = (fact.concept, fact.value, fact.positive) == (q.asked.concept, q.asked.value, q.asked.positive)
        return "yes" if yes else "no"
    return clause(fact, random.Random(0))


def _replies(model: Any, data: Any, questions: list[Question]) -> Iterator[tuple[str, int]]:
    """Replies in question order: batched when the model can (`answer_batch`), one by one otherwise; the
    majority baseline (a model with a `majority` table and no `answer`) replies without looking."""
    if not hasattr(model, "answer"):
        for q in questions:
            yield majority_reply(q, model.majority.get(q.kind)), 0
        return
    step = int(getattr(model, "batch_size", 1)) if hasattr(model, "answer_batch") else 1
    for start in range(0, len(questions), step):
        chunk = questions[start : start + step]
        if step == 1:
            yield model.answer(data.images[chunk[0].item], chunk[0].text)
        else:
            yield from model.answer_batch([data.images[q.item] for q in chunk], [q.text for q in chunk])


def run(model: Any, data: Any, cfg: Any, ctx: Context) -> list[TaskResult]:
    require(
        hasattr(model, "answer") or isinstance(getattr(model, "majority", None), dict),
        f"model {model.name} is not a chat model",
    )
    attributes = list(cfg.attributes) or default_attributes(data)
    questions = build_questions(data, attributes, ctx.seed)
    require(bool(questions), f"dataset {data.name} has no labelled attributes to ask about")
    if cfg.max_items and len(questions) > cfg.max_items:
        rng = np.random.default_rng(ctx.seed)
        questions = [questions[i] for i in sorted(rng.choice(len(questions), cfg.max_items, replace=False))]
    correct, replies, tokens = [], [], 0
    start = time.perf_counter()
    for q, (reply, n_tokens) in zip(questions, _replies(model, data, questions)):
        tokens += n_tokens
        result = grade(reply, q)
        correct.append(result.ok)
        replies.append(
            {
                "id": data.ids[q.item],
                "type": q.kind,
                "template": q.template,
                "question": q.text,
                "reply": reply,
                "answer": q.answer,
                "correct": result.ok,
                "why": result.reason(),
            }
        )
    seconds = time.perf_counter() - start
    kinds = np.asarray([q.kind for q in questions], dtype=object)
    item_of = np.asarray([q.item for q in questions])
    groups = {a: v[item_of] for a, v in ctx.group_labels(data).items()}
    part = Part(grouped_accuracy_fn(np.asarray(correct), kinds), np.arange(len(questions)), groups)
    result = ctx.score(TASK, data.name, cfg.headline or "accuracy", [part], {"samples": replies[:50]})
    result.metrics["tokens_per_s"] = tokens / seconds if seconds else float("nan")
    result.metrics["ms_per_answer"] = 1000.0 * seconds / len(questions)
    return [result]
