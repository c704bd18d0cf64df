"""The chat model behind /v1/chat/completions: one interface, two backends, the same answers.

`ChatBackend.complete(Generation) -> Completion` (and `stream`, pieces of the same) is all the chat route
knows. A `Generation` carries a conversation whose images are already prepared (decoded, checked, cropped
the way the model was trained: facevlm.serve.chat_serving), and every sampling value explicitly, so the
two backends cannot disagree through defaults:

- `InProcessBackend`: FaceVLM (facevlm.vlm.inference.FaceChat) in this process. Generation is CPU-bound and
  not thread-safe, so it runs in a one-thread executor of its own: never on the event loop, one `generate`
  at a time; requests that arrive meanwhile wait (at most `max_queue`, then 429 `server_busy`) and are
  generated together in the next batch (up to `max_batch` conversations of the same model and sampling
  settings; seeded requests alone), and a request that times out while waiting leaves the queue. Adapters
  are peft LoRAs loaded on the model and switched per request.
- `VLLMBackend` (facevlm.serve.chat_vllm): the vLLM engine's OpenAI server (facevlm.engine) over HTTP,
  started and stopped by the gateway unless `chat.engine.url` names a running one.

`facevlm.serve.app` picks one by `chat.backend` (`ChatConfig.backend_kind`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facevlm.errors import FacevlmError
from facevlm.serve.config import ChatConfig
from facevlm.vlm.inference import Reply


@dataclass
class Generation:
    """What to generate. `messages`: OpenAI roles; user content is a list of {"type": "text"} and
    {"type": "image", "image": PIL image as the model must see it}."""

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Completion:
    replies: list[Reply]  # one per choice
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Piece:
    """One streamed event: new text of choice `index`; its final `reply` (full text, tool calls, finish
    reason); or (index -1) the request's `usage` as (prompt, completion) tokens, last."""

    index: int
    text: str = ""
    reply: Reply | None = None
    usage: tuple[int, int] | None = None


class ChatBackend:
    """The interface. `complete` is required; `stream` defaults to the completion in one piece per choice."""

    kind = "base"

    async def start(self) -> None:
        """Called once before the gateway's port opens."""

    async def close(self) -> None:
        """Called once when the gateway stops."""

    async def complete(self, gen: Generation) -> Completion:
        raise NotImplementedError

    async def stream(self, gen: Generation) -> AsyncIterator[Piece]:
        done = await self.complete(gen)
        for i, reply in enumerate(done.replies):
            if reply.text:
                yield Piece(i, text=reply.text)
            yield Piece(i, reply=reply)
        yield Piece(-1, usage=(done.prompt_tokens, done.completion_tokens))


def cut_at_stop(reply: Reply, stops: list[str]) -> Reply:
    """The reply ended at the first stop string (what vLLM does while decoding)."""
    if not stops or not reply.text:
        return reply
    cuts = [reply.text.find(s) for s in stops if s in reply.text]
    if not cuts:
        return reply
    text = reply.text[: min(cuts)] or None
    finish = "tool_calls" if reply.tool_calls else "stop"
    return Reply(text, reply.tool_calls, reply.prompt_tokens, reply.completion_tokens, finish)


def context_error(prompt: int, wanted: int, limit: int) -> FacevlmError:
    return FacevlmError(
        f"this model's maximum context length is {limit} tokens; the messages take about {prompt} and "
        f"{wanted} more were requested for the answer (shorten the conversation or lower max_tokens)",
        code="context_length_exceeded",
    )


class InProcessBackend(ChatBackend):
    kind = "in_process"

    def __init__(self, cfg: ChatConfig):
        from facevlm.vlm.inference import FaceChat

        self.cfg = cfg
        self.chat = FaceChat(cfg.model, crop="never")  # images arrive prepared (chat_serving)
        if cfg.adapters:
            from peft import PeftModel

            for i, (name, folder) in enumerate(cfg.adapters.items()):
                path = str(adapter_dir(folder))
                if i == 0:
                    self.chat.model = PeftModel.from_pretrained(self.chat.model, path, adapter_name=name)
                else:
                    self.chat.model.load_adapter(path, adapter_name=name)
            self.chat.model.eval()
        self.image_tokens = int(getattr(self.chat.processor, "image_seq_len", 0) or 0) + 2
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="facevlm-chat")
        self.pending = 0
        self.waiting: list[tuple[Generation, asyncio.Future]] = []  # requests not yet given to the model
        self.worker: asyncio.Task | None = None

    async def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def complete(self, gen: Generation) -> Completion:
        if self.pending >= self.cfg.max_queue:
            busy = FacevlmError(
                f"the chat model is busy ({self.pending} requests waiting); retry shortly",
                code="server_busy",
                status_code=429,
            )
            busy.headers = {"Retry-After": "1"}  # type: ignore[attr-defined]  # one answer takes about a second
            raise busy
        self.pending += 1
        entry = (gen, asyncio.get_running_loop().create_future())
        self.waiting.append(entry)
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._work())
        try:
            return await entry[1]
        finally:
            if entry in self.waiting:  # timed out (cancelled) before the model took it
                self.waiting.remove(entry)
            self.pending -= 1

    async def _work(self) -> None:
        """Give the model what is waiting, a batch at a time: requests that arrived while a batch ran are
        generated together in the next (up to `chat.max_batch` conversations), as a server's batcher does."""
        loop = asyncio.get_running_loop()
        while self.waiting:
            batch = self._next_batch()
            try:
                results = await loop.run_in_executor(self.executor, self._run_batch, [gen for gen, _ in batch])
            except Exception as exc:  # noqa: BLE001  # the worker must outlive a failed batch: its requests get the error
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results):
                if future.done():  # the client gave up meanwhile
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def _next_batch(self) -> list[tuple[Generation, asyncio.Future]]:
        """The oldest waiting request and the later ones it can share `generate` with: the same model or
        adapter and sampling settings; a seeded request runs alone (its sampling must not depend on others)."""
        first = self.waiting[0][0]
        batch, size = [], 0
        for entry in list(self.waiting):
            gen = entry[0]
            fits = not batch or (gen.seed is None and first.seed is None and _batch_key(gen) == _batch_key(first))
            if not fits or (batch and size + gen.n > self.cfg.max_batch):
                continue
            batch.append(entry)
            size += gen.n
            self.waiting.remove(entry)
            if first.seed is not None:
                break
        return batch

    def _run_batch(self, gens: list[Generation]) -> list[Completion | BaseException]:
        """One `generate` for the batch (in the model's thread); a request's own error is its own result."""
        out: list[Completion | BaseException | None] = [None] * len(gens)
        ready = []
        for i, gen in enumerate(gens):
            prompt = self.prompt_tokens(gen.messages)
            if prompt + gen.max_tokens > self.cfg.max_model_len:
                out[i] = context_error(prompt, gen.max_tokens, self.cfg.max_model_len)
            else:
                ready.append(i)
        if ready:
            first = gens[ready[0]]
            convs = [(i, gens[i].messages) for i in ready for _ in range(gens[i].n)]
            # conversations with images first: Idefics3's processor cannot batch an image-less first sample
            order = sorted(range(len(convs)), key=lambda k: -_images(convs[k][1]))
            try:
                with self._adapter(first.model):
                    replies = self.chat.generate(
                        [convs[k][1] for k in order],
                        max_new_tokens=first.max_tokens,
                        temperature=first.temperature,
                        top_p=first.top_p,
                        seed=None if first.seed is None else first.seed % 2**64,
                    )
            except Exception as exc:  # noqa: BLE001  # every request of the batch gets the failure
                return [exc if o is None else o for o in out]
            by_request: dict[int, list[Reply]] = {i: [] for i in ready}
            for k, reply in sorted(zip(order, replies)):
                by_request[convs[k][0]].append(cut_at_stop(reply, gens[convs[k][0]].stop))
            for i, rs in by_request.items():
                out[i] = Completion(rs, rs[0].prompt_tokens, sum(r.completion_tokens for r in rs))
        return out  # type: ignore[return-value]

    def prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        """The templated conversation's length; each image is its `<image>` run (one tile per image)."""
        text = self.chat.processor.apply_chat_template([messages], add_generation_prompt=True, tokenize=False)
        text = text[0] if isinstance(text, list) else text
        tokens = self.chat.processor.tokenizer(text, add_special_tokens=False).input_ids
        return len(tokens) + _images(messages) * self.image_tokens

    def _adapter(self, model: str) -> Any:
        if not self.cfg.adapters:
            return nullcontext()
        if model == self.cfg.model_id:
            return self.chat.model.disable_adapter()
        self.chat.model.set_adapter(model)
        return nullcontext()


def _batch_key(gen: Generation) -> tuple[Any, ...]:
    return (gen.model, gen.max_tokens, gen.temperature, gen.top_p)


def _images(messages: list[dict[str, Any]]) -> int:
    return sum(
        1 for m in messages if isinstance(m.get("content"), list) for p in m["content"] if p.get("type") == "image"
    )


def adapter_dir(value: str) -> Path:
    """A LoRA adapter folder: a path, or one relative to $FACEVLM_HOME/models (`facevlm-chat-small/adapter`)."""
    from facevlm.paths import models_dir

    path = Path(value).expanduser()
    path = path if path.is_absolute() or path.exists() else models_dir() / value
    if not (path / "adapter_config.json").is_file():
        raise FacevlmError(f"chat.adapters: {value} has no adapter_config.json (not a peft adapter folder)")
    return path
