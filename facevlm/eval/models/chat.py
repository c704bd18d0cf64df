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

    def answer(self, image: Any, question: str) -> tuple[str, int]:
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": image_data_url(image)}},
                    {"type": "text", "text": question},
                ],
            }
        ]
        try:
            resp = self.client.chat.completions.create(
                model=self.model_id, messages=messages, max_tokens=self.max_tokens, temperature=0.0
            )
        except self._openai.OpenAIError as exc:
            raise FacevlmError(f"model {self.name}: chat request to {self.url} failed: {exc}") from None
        text = resp.choices[0].message.content or ""
        tokens = resp.usage.completion_tokens if resp.usage else len(text.split())
        return text, int(tokens)


class InProcessChat(ChatModel):
    """transformers AutoModelForImageTextToText + AutoProcessor with the model's chat template."""

    def __init__(self, spec: ModelSpec):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from facevlm.assets import resolve

        source = str(resolve(spec.pretrained or spec.model))
        try:
            self.processor = AutoProcessor.from_pretrained(source)
            self.model = AutoModelForImageTextToText.from_pretrained(source).eval()
        except (OSError, ValueError) as exc:
            raise FacevlmError(f"model {spec.name}: cannot load {source}: {str(exc).splitlines()[0]}") from None
        self._torch = torch
        self.name, self.pretrained, self.max_tokens = spec.name, source, spec.max_new_tokens
        self._fp = torch_fingerprint(self.model, source)

    def fingerprint(self) -> str:
        return self._fp

    def answer(self, image: Any, question: str) -> tuple[str, int]:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = self.processor(text=prompt, images=[open_image(image)], return_tensors="pt")
        with self._torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_tokens, do_sample=False)
        new = out[0, inputs["input_ids"].shape[1] :]
        return self.processor.decode(new, skip_special_tokens=True), int(new.numel())


def load_chat(spec: ModelSpec) -> ChatModel:
    return OpenAIChat(spec) if spec.url else InProcessChat(spec)
