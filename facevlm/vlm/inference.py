"""In-process FaceVLM chat: batched generation with the model's own chat template, replies parsed the way
an OpenAI-compatible server returns them (text, or `face_search` tool calls).

The same reply format as the vLLM engine with `--tool-call-parser hermes`: the model writes
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, which becomes one OpenAI `tool_calls` entry with
`arguments` as a JSON string; any text outside the tags is the message content. A block that is not valid
JSON stays in the text (an answer is never silently dropped).

Face crops: the model is tuned on face crops made by the training crop rule (and whole photos for
counting), so `crop="auto"` runs the face pipeline and, when a photo shows exactly one face, hands the
model that face's crop; with several faces the photo is kept whole so the model can count them and refer
to them by position.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from facevlm.errors import FacevlmError
from facevlm.image import open_image

TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)
CropMode = Literal["auto", "never"]


@dataclass
class Reply:
    text: str | None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"  # stop | length | tool_calls


def parse_reply(raw: str) -> tuple[str | None, list[dict[str, Any]]]:
    """(content, OpenAI tool_calls) from the decoded completion."""
    calls, kept = [], raw
    for match in TOOL_CALL.finditer(raw):
        try:
            body = json.loads(match.group(1))
            name, args = body["name"], body.get("arguments", {})
        except (ValueError, KeyError, TypeError):
            continue
        calls.append(
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
            }
        )
        kept = kept.replace(match.group(0), "")
    text = kept.strip()
    return (text or None), calls


def view_detector(detector: Any = None) -> Any:
    """The face pipeline `model_view` runs: detection and the training crop, no expression model. Pass a
    loaded `detector` (a FaceDetector) to share it, e.g. the gateway's gallery one."""
    from facevlm.vision.pipeline import FacePipeline, PipelineConfig

    return FacePipeline(PipelineConfig(expression=False), detector=detector)


Box = tuple[float, float, float, float]


class View(NamedTuple):
    """What `model_view` makes of a photo: the `picture` the model is given, and the `box` of the photo's one
    face (None: no face, or several); `detected` is False where nobody looked (`crop: never`)."""

    picture: Any
    box: Box | None
    detected: bool = True


def model_view(image: Any, detector: Any, seen: MutableMapping[bytes, Box | None] | None = None) -> View:
    """What the model is given for `image` (an opened PIL image): a photo with exactly one face becomes that
    face's training crop (what the model was tuned on), any other photo stays whole so the model can count
    the faces and refer to them by position. `detector` is a FacePipeline; one rule for the in-process chat
    and the chat gateway, so both show the same pixels.

    `seen` (optional) remembers each picture's outcome, its one face's box or None, under a digest of its
    pixels: a chat client sends the whole conversation every turn, and detecting the same photo again cost
    the gateway 45-83 ms per turn on the sample photos (docs/benchmarks.md). Only the digest and the box are
    kept, no pixels.
    """
    key = None
    if seen is not None:
        shape = f"{image.mode}{image.size}"[:16].encode()  # equal bytes in another shape are another picture
        key = hashlib.blake2b(image.tobytes(), digest_size=16, person=shape).digest()
    if key is not None and key in seen:
        box = seen[key]
    else:
        faces = detector.detect_batch([image])[0]
        box = faces[0].box if len(faces) == 1 else None
        if key is not None:
            seen[key] = box
    return View(image if box is None else detector.face(image, box).crop, box)


class FaceChat:
    """A loaded chat model: `source` is a model folder (merged), a model name under $FACEVLM_HOME/models,
    or a hub id; `adapter` an optional peft folder applied on top."""

    def __init__(self, source: str, adapter: str | None = None, crop: CropMode = "auto"):
        import torch

        from facevlm.vlm.build import bf16_available, load_vlm, resolve_source

        self.source = resolve_source(source)
        self.model, self.processor = load_vlm(source)
        if adapter:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, resolve_source(adapter))
        self.model.eval()
        self.processor.tokenizer.padding_side = "left"  # batched generation continues every row at its end
        self.crop, self._pipeline, self._torch = crop, None, torch
        self.device = "cuda" if next(self.model.parameters()).is_cuda else "cpu"
        self.bf16 = bf16_available()  # autocast: float32 weights, bf16 matmuls where faster (~2x on an EPYC)
        eos = self.model.generation_config.eos_token_id
        self.eos = eos if isinstance(eos, list) else [eos]

    def prepare_image(self, image: Any) -> Any:
        """The picture the model sees (see `model_view`)."""
        image = open_image(image)
        if self.crop == "never":
            return image
        if self._pipeline is None:
            self._pipeline = view_detector()
        return model_view(image, self._pipeline).picture

    def _conversation(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for msg in messages:
            content = msg.get("content")
            if isinstance(content, list):
                content = [
                    {"type": "image", "image": self.prepare_image(p["image"])} if p.get("type") == "image" else p
                    for p in content
                ]
            out.append({**msg, "content": content})
        return out

    def generate(
        self,
        conversations: list[list[dict[str, Any]]],
        *,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> list[Reply]:
        """One reply per conversation, generated as one left-padded batch."""
        torch = self._torch
        if seed is not None:
            torch.manual_seed(seed)
        enc = self.processor.apply_chat_template(
            [self._conversation(c) for c in conversations],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"padding": True},
        )
        sample = temperature > 0
        with torch.inference_mode(), torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=sample,
                temperature=temperature if sample else None,
                top_p=top_p if sample else None,
                eos_token_id=self.eos,
                pad_token_id=self.processor.tokenizer.pad_token_id,
            )
        prompt_len = enc["input_ids"].shape[1]
        replies = []
        for row, prompt_mask in zip(out, enc["attention_mask"]):
            new = row[prompt_len:]
            ended = [i for i, t in enumerate(new.tolist()) if t in self.eos]
            new = new[: ended[0]] if ended else new
            text, calls = parse_reply(self.processor.decode(new, skip_special_tokens=True))
            finish = "tool_calls" if calls else ("stop" if ended else "length")
            replies.append(Reply(text, calls, int(prompt_mask.sum()), int(new.numel()), finish))
        return replies

    def ask(self, images: list[Any], question: str, **kwargs: Any) -> Reply:
        """One user turn: the images (in order) then the question."""
        if not question.strip():
            raise FacevlmError("the question is empty")
        content = [{"type": "image", "image": img} for img in images] + [{"type": "text", "text": question}]
        return self.generate([[{"role": "user", "content": content}]], **kwargs)[0]


def tokens_per_second(chat: FaceChat, conversations: list[list[dict[str, Any]]], max_new_tokens: int) -> float:
    """Generated tokens per wall-clock second for one batch (the in-process row of the speed table)."""
    start = time.perf_counter()
    replies = chat.generate(conversations, max_new_tokens=max_new_tokens)
    return sum(r.completion_tokens for r in replies) / (time.perf_counter() - start)
