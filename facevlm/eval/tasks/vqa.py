"""VQA for chat models: questions built from each face's ground-truth attributes, answered in-process
or through any OpenAI-compatible endpoint, scored by normalised-answer accuracy per question type.
Sensitive attributes are asked about only when a suite names them (schema.SENSITIVE)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from facevlm.clip.prompts import binary_phrases
from facevlm.data.schema import SENSITIVE, VOCABULARY
from facevlm.eval.metrics import answer_correct, grouped_accuracy_fn
from facevlm.eval.tasks import Context, Part, TaskResult, require

TASK = "vqa"

OPEN_QUESTIONS: dict[str, str] = {
    "expression": "What is the facial expression of this person? Answer with one word: {values}.",
    "age_group": "Which age group does this person appear to be in? Answer with one of: {values}.",
    "hair_color": "What colour is this person's hair? Answer with one word: {values}.",
    "hair_length": "How long is this person's hair? Answer with one word: {values}.",
    "gender_presentation": "Does this person present as feminine or masculine? Answer with one word.",
    "skin_tone": "On a scale from 1 (lightest) to 6 (darkest), what is this person's apparent skin tone? "
                 "Answer with one number.",
}
SYNONYMS: dict[str, tuple[str, ...]] = {
    "surprise": ("surprised",), "anger": ("angry",), "disgust": ("disgusted",), "fear": ("fearful", "afraid", "scared"),
    "happy": ("happiness", "smiling"), "sad": ("sadness",), "neutral": ("calm",), "blond": ("blonde",),
    "gray": ("grey",),
}


@dataclass
class Question:
    item: int
    kind: str  # question type = attribute name
    text: str
    answers: tuple[str, ...]


def build_questions(data: Any, attributes: list[str]) -> list[Question]:
    out = []
    for attribute in attributes:
        spec = VOCABULARY[attribute]
        for i, value in enumerate(data.labels(attribute)):
            if not value:
                continue
            if spec.kind == "binary":
                pos, _ = binary_phrases(attribute)
                text = f"Does this photo show {pos}? Answer yes or no."
                answers: tuple[str, ...] = ("yes",) if value == "true" else ("no",)
            else:
                text = OPEN_QUESTIONS.get(attribute, f"What is this person's {attribute.replace('_', ' ')}? "
                                          "Answer with one of: {values}.").format(values=", ".join(spec.values))
                answers = (value, *SYNONYMS.get(value, ()))
            out.append(Question(i, attribute, text, answers))
    return out


def default_attributes(data: Any) -> list[str]:
    return [a for a in data.attributes if a in VOCABULARY and VOCABULARY[a].kind != "numeric"
            and a not in SENSITIVE and (data.labels(a) != "").any()]


def run(model: Any, data: Any, cfg: Any, ctx: Context) -> list[TaskResult]:
    require(hasattr(model, "answer"), f"model {model.name} is not a chat model")
    attributes = list(cfg.attributes) or default_attributes(data)
    questions = build_questions(data, attributes)
    require(bool(questions), f"dataset {data.name} has no labelled attributes to ask about")
    if cfg.max_items and len(questions) > cfg.max_items:
        rng = np.random.default_rng(ctx.seed)
        questions = [questions[i] for i in sorted(rng.choice(len(questions), cfg.max_items, replace=False))]
    correct, replies, tokens, seconds = [], [], 0, 0.0
    for q in questions:
        start = time.perf_counter()
        reply, n_tokens = model.answer(data.images[q.item], q.text)
        seconds += time.perf_counter() - start
        tokens += n_tokens
        correct.append(answer_correct(reply, q.answers))
        replies.append({"id": data.ids[q.item], "type": q.kind, "question": q.text, "reply": reply,
                        "answers": list(q.answers), "correct": correct[-1]})
    kinds = np.asarray([q.kind for q in questions], dtype=object)
    item_of = np.asarray([q.item for q in questions])
    groups = {a: v[item_of] for a, v in ctx.group_labels(data).items()}
    part = Part(grouped_accuracy_fn(np.asarray(correct), kinds), np.arange(len(questions)), groups)
    result = ctx.score(TASK, data.name, cfg.headline or "accuracy", [part], {"samples": replies[:50]})
    result.metrics["tokens_per_s"] = tokens / seconds if seconds else float("nan")
    result.metrics["ms_per_answer"] = 1000.0 * seconds / len(questions)
    return [result]
