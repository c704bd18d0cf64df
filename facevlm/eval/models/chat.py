"""Chat models for VQA: any OpenAI-compatible endpoint (our gateway, vLLM, anything else) through
the `openai` client, or a transformers image-text-to-text model in-process."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from typing import Any

from facevlm.errors import FacevlmError
from facevlm.eval.models.base import ChatModel, ModelSpec, torch_fingerprint
from facevlm.image import open_image


def image_data_url(image: Any) -> str:
    buf = io.BytesIO()
    open_image(image).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


CALL_TOKENS = 160  # generation budget when a reply may be a tool call (search_call task)


class OpenAIChat(ChatModel):
    """Sends the face crop as a data: URL image part; greedy decoding so runs are repeatable."""

    def __init__(self, spec: ModelSpec):
        import openai

        self.client = openai.OpenAI(
            base_url=spec.url,
            api_key=os.environ.get(spec.api_key_env, "EMPTY"),
            timeout=float(spec.options.get("timeout", 120)),
            max_retries=1,
        )
        self._openai = openai
        self.name, self.pretrained = spec.name, spec.model
        self.model_id, self.max_tokens = spec.model, spec.max_new_tokens
        self.url = spec.url

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.url}|{self.model_id}".encode()).hexdigest()[:16]

    def _create(self, image: Any, question: str, **kwargs: Any) -> Any:
        parts = [] if image is None else [{"type": "image_url", "image_url": {"url": image_data_url(image)}}]
        messages = [{"role": "user", "content": parts + [{"type": "text", "text": question}]}]
        kwargs.setdefault("max_tokens", self.max_tokens)
        try:
            return self.client.chat.completions.create(
                model=self.model_id, messages=messages, temperature=0.0, **kwargs
            )
        except self._openai.OpenAIError as exc:
            raise FacevlmError(f"model {self.name}: chat request to {self.url} failed: {exc}") from None

    def answer(self, image: Any, question: str) -> tuple[str, int]:
        resp = self._create(image, question)
        text = resp.choices[0].message.content or ""
        tokens = resp.usage.completion_tokens if resp.usage else len(text.split())
        return text, int(tokens)

    def answer_calls(self, images: list[Any], questions: list[str]) -> list[tuple[str | None, list[dict]]]:
        """(text, tool_calls) with the `face_search` tool offered, as a client with its own tools would ask
        (a vLLM server needs `--enable-auto-tool-choice --tool-call-parser hermes` for this)."""
        from facevlm.data.search_call import tool_schema

        out = []
        for image, question in zip(images, questions):
            message = self._create(image, question, tools=[tool_schema()], max_tokens=max(self.max_tokens, CALL_TOKENS))
            message = message.choices[0].message
            calls = [c.model_dump() for c in (message.tool_calls or [])]
            out.append((message.content, calls))
        return out


class InProcessChat(ChatModel):
    """A FaceVLM (or any transformers image-text-to-text model) in this process, through
    `facevlm.vlm.inference.FaceChat`: the model's chat template, batched greedy generation.

    Options: `adapter` (a peft folder on top of `model`), `no_image: true` (the "same LM, image removed"
    baseline: the question alone, so a score above it is what the picture adds), `crop: never` (the
    harness's images are face crops already, the default here)."""

    def __init__(self, spec: ModelSpec):
        from facevlm.vlm.inference import FaceChat

        source = spec.pretrained or spec.model
        self.chat = FaceChat(source, adapter=spec.options.get("adapter"), crop=spec.options.get("crop", "never"))
        self.no_image = bool(spec.options.get("no_image", False))
        self.name, self.pretrained, self.max_tokens = spec.name, self.chat.source, spec.max_new_tokens
        self.batch_size = spec.batch_size
        self._fp = torch_fingerprint(self.chat.model, f"{self.chat.source}|no_image={self.no_image}")

    def fingerprint(self) -> str:
        return self._fp

    def answer(self, image: Any, question: str) -> tuple[str, int]:
        return self.answer_batch([image], [question])[0]

    def answer_batch(self, images: list[Any], questions: list[str]) -> list[tuple[str, int]]:
        replies = self.chat.generate(self._conversations(images, questions), max_new_tokens=self.max_tokens)
        return [(_reply_text(r), r.completion_tokens) for r in replies]

    def _conversations(self, images: list[Any], questions: list[str]) -> list[list[dict[str, Any]]]:
        convs = []
        for image, question in zip(images, questions):
            parts = [] if self.no_image or image is None else [{"type": "image", "image": image}]
            convs.append([{"role": "user", "content": parts + [{"type": "text", "text": question}]}])
        return convs

    def answer_calls(self, images: list[Any], questions: list[str]) -> list[tuple[str | None, list[dict]]]:
        """(text, OpenAI tool_calls) per question; an image of None is a request without a picture."""
        # a face_search call is ~60-90 tokens of JSON: a short-answer budget would cut every call
        budget = max(self.max_tokens, CALL_TOKENS)
        replies = self.chat.generate(self._conversations(images, questions), max_new_tokens=budget)
        return [(r.text, r.tool_calls) for r in replies]


def _reply_text(reply: Any) -> str:
    """The reply as the grader reads it: the text, plus any tool call written out (never empty by accident)."""
    calls = " ".join(f"{c['function']['name']}({c['function']['arguments']})" for c in reply.tool_calls)
    return " ".join(part for part in (reply.text or "", calls) if part)


def load_chat(spec: ModelSpec) -> ChatModel:
    return OpenAIChat(spec) if spec.url else InProcessChat(spec)
