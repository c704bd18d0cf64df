"""Optional LLM rewrite of grammar captions, kept only when it stays faithful to the labels.

FaceCaption-15M rewrote its template sentences with an LLM for naturalness. A small local model
(SmolLM2-135M-Instruct by default, via transformers; or any OpenAI-compatible server such as the
project's vLLM engine) drops or invents details often, so every candidate goes through
`facts.check`: each stated fact (or a synonym) must survive, nothing may contradict a known label,
and (strict) no new attribute, gendered word or name may appear. A rejected rewrite falls back to
the grammar caption and is counted by reason, so the acceptance rate is visible per run.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from facevlm.data.facts import Fact, check
from facevlm.errors import FacevlmError

SYSTEM = (
    "You rewrite short descriptions of a face photo into one fluent, natural sentence. Keep every "
    "detail, add nothing new, keep words like 'apparently' and 'seem', refer to the person as "
    "'they' or 'this person', and never guess gender or a name. Reply with the sentence only."
)
# Faithful hand-written pairs: the small model copies the pattern far better than it follows rules.
FEW_SHOT = (
    ("A person with black hair and glasses, smiling.", "A smiling person with black hair, wearing glasses."),
    (
        "This person has a beard and short hair. They seem to be facing the camera.",
        "This person with short hair and a beard seems to be facing the camera.",
    ),
)
_HEDGE = re.compile(r"\b(seem\w*|appear\w*|apparent\w*|likely|probably|possibly|perhaps|looks? like)\b", re.I)
_PREFIX = re.compile(r"^(?:sure[^:]*:|here(?: is|'s)[^:]*:|rewritten(?: sentence)?:|rewrite:|answer:)\s*", re.I)

Item = tuple[str, Sequence[Fact], Sequence[Fact], set[str] | frozenset[str]]  # caption, stated, known, conflicted


@dataclass
class RewriteConfig:
    """`model` is an asset name, a local HF folder or a hub id (transformers backend), or the served
    model name (openai backend, with `base_url` like http://127.0.0.1:8000/v1)."""

    model: str = "smollm2-135m-instruct"
    backend: str = "transformers"  # transformers | openai
    base_url: str | None = None
    api_key: str = "EMPTY"
    batch_size: int = 8
    max_new_tokens: int = 48
    temperature: float = 0.0  # 0 = greedy
    device: str = "cpu"
    dtype: str = "float32"
    strict: bool = True
    few_shot: bool = True
    threads: int | None = None  # torch threads while generating; 1 is far faster on a busy shared CPU
    retries: int = 0  # re-sample rejected rewrites this many times (at retry_temperature)
    retry_temperature: float = 0.7
    seed: int = 0  # for sampled retries (sets torch's global seed on the transformers backend)

    def __post_init__(self) -> None:
        if self.backend not in ("transformers", "openai"):
            raise FacevlmError(f"rewrite.backend: {self.backend!r} is not 'transformers' or 'openai'")
        if self.backend == "openai" and not self.base_url:
            raise FacevlmError("rewrite.base_url: the openai backend needs a server URL")
        if self.batch_size < 1 or self.max_new_tokens < 1 or self.retries < 0:
            raise FacevlmError("rewrite: batch_size and max_new_tokens must be >= 1, retries >= 0")


@dataclass
class RewriteResult:
    text: str  # what goes into the dataset: the rewrite if accepted, else the grammar caption
    accepted: bool
    reason: str  # ok | contradiction | dropped_fact | unsupported_claim | style | dropped_hedge | empty
    #              | unchanged | too_long
    candidate: str  # the model's raw (cleaned) output, kept for inspection


def messages_for(caption: str, few_shot: bool = True) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": SYSTEM}]
    for src, dst in FEW_SHOT if few_shot else ():
        msgs += [{"role": "user", "content": f"Rewrite: {src}"}, {"role": "assistant", "content": dst}]
    return msgs + [{"role": "user", "content": f"Rewrite: {caption}"}]


def clean(text: str) -> str:
    """First line of the reply, without chatty prefixes or wrapping quotes."""
    text = text.strip().split("\n")[0].strip()
    text = _PREFIX.sub("", text).strip().strip("\"\u201c\u201d'").strip()
    return re.sub(r"\s+", " ", text)


def judge(
    caption: str,
    candidate: str,
    stated: Sequence[Fact],
    known: Sequence[Fact],
    conflicted: set[str] | frozenset[str] = frozenset(),
    strict: bool = True,
) -> RewriteResult:
    """Accept `candidate` only if it keeps every stated fact and contradicts none (see facts.check)."""
    if not candidate:
        return RewriteResult(caption, False, "empty", candidate)
    if candidate.rstrip(".").lower() == caption.rstrip(".").lower():
        return RewriteResult(caption, False, "unchanged", candidate)
    if len(candidate) > 2 * len(caption) + 40:
        return RewriteResult(caption, False, "too_long", candidate)
    if _HEDGE.search(caption) and not _HEDGE.search(candidate):  # a pseudo-label must not become certain
        return RewriteResult(caption, False, "dropped_hedge", candidate)
    result = check(candidate, stated, known, conflicted=conflicted, strict=strict)
    if not result.ok:
        return RewriteResult(caption, False, result.reason(), candidate)
    return RewriteResult(candidate, True, "ok", candidate)


class _Transformers:
    """Batched greedy generation with left padding (decoder-only models pad on the left)."""

    def __init__(self, cfg: RewriteConfig):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from facevlm.assets import resolve

        path = str(resolve(cfg.model))
        try:
            self.tok = AutoTokenizer.from_pretrained(path, padding_side="left")
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, cfg.dtype))
        except (OSError, ValueError) as exc:
            raise FacevlmError(f"rewrite.model {cfg.model!r}: cannot load ({str(exc).splitlines()[0]})") from None
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        if not self.tok.chat_template:
            raise FacevlmError(f"rewrite.model {cfg.model!r}: tokenizer has no chat template")
        self.model.to(cfg.device).eval()
        self.cfg = cfg

    def generate(self, conversations: list[list[dict[str, str]]], temperature: float, seed: int) -> list[str]:
        import torch

        texts = self.tok.apply_chat_template(conversations, add_generation_prompt=True, tokenize=False)
        enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.cfg.device)
        sample = temperature > 0
        if sample:
            torch.manual_seed(seed)
        threads = torch.get_num_threads()  # restored after: the setting is process-wide
        torch.set_num_threads(self.cfg.threads or threads)
        try:
            with torch.inference_mode():
                out = self.model.generate(
                    **enc,
                    max_new_tokens=self.cfg.max_new_tokens,
                    do_sample=sample,
                    temperature=temperature if sample else None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=self.tok.pad_token_id,
                )
        finally:
            torch.set_num_threads(threads)
        return self.tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)


class _OpenAI:
    """Any OpenAI-compatible chat server (vLLM's batches concurrent requests itself)."""

    def __init__(self, cfg: RewriteConfig):
        import openai

        self.client = openai.OpenAI(base_url=cfg.base_url, api_key=cfg.api_key, max_retries=1)
        self.cfg = cfg

    def _one(self, msgs: list[dict[str, str]], temperature: float, seed: int) -> str:
        import openai

        try:
            reply = self.client.chat.completions.create(
                model=self.cfg.model,
                messages=msgs,  # type: ignore[arg-type]
                max_tokens=self.cfg.max_new_tokens,
                temperature=temperature,
                seed=seed,
            )
        except openai.OpenAIError as exc:
            raise FacevlmError(f"rewrite server {self.cfg.base_url}: {str(exc).splitlines()[0]}") from None
        return reply.choices[0].message.content or ""

    def generate(self, conversations: list[list[dict[str, str]]], temperature: float, seed: int) -> list[str]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=self.cfg.batch_size) as pool:
            return list(pool.map(lambda m: self._one(m, temperature, seed), conversations))


class Rewriter:
    """Rewrites captions in batches and keeps per-reason counts in `counts`."""

    def __init__(self, cfg: RewriteConfig, backend: Any | None = None):
        self.cfg = cfg
        self.backend = backend or (_OpenAI(cfg) if cfg.backend == "openai" else _Transformers(cfg))
        self.name = cfg.model.rstrip("/").split("/")[-1]
        self.counts: Counter[str] = Counter()
        self.retried_ok = 0

    def rewrite(self, items: Sequence[Item]) -> list[RewriteResult]:
        """One result per item; `counts` gets each item's final reason, `retried_ok` the rescues."""
        results = self._round(items, self.cfg.temperature, self.cfg.seed)
        for attempt in range(1, self.cfg.retries + 1):
            todo = [i for i, r in enumerate(results) if not r.accepted]
            again = self._round([items[i] for i in todo], self.cfg.retry_temperature, self.cfg.seed + attempt)
            for i, r in zip(todo, again):
                if r.accepted:
                    results[i] = r
                    self.retried_ok += 1
        self.counts.update(r.reason for r in results)
        return results

    def _round(self, items: Sequence[Item], temperature: float, seed: int) -> list[RewriteResult]:
        results: list[RewriteResult] = []
        for start in range(0, len(items), self.cfg.batch_size):
            chunk = items[start : start + self.cfg.batch_size]
            raw = self.backend.generate([messages_for(c, self.cfg.few_shot) for c, *_ in chunk], temperature, seed)
            results += [
                judge(caption, clean(reply), stated, known, conflicted, self.cfg.strict)
                for (caption, stated, known, conflicted), reply in zip(chunk, raw)
            ]
        return results

    @property
    def acceptance(self) -> float:
        total = sum(self.counts.values())
        return self.counts["ok"] / total if total else 0.0
