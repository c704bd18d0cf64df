"""FaceVLM training samples: OpenAI-style conversations with images, batched through the model's processor.

Both stages read what the data engine already wrote, so there is one source of wording:
- align: each record's captions (facevlm.data.caption), asked with the data engine's `describe` question
  templates, on the face crop of the training crop rule (facevlm.data.store.face_crop);
- sft: the exported QA chat samples (`<dataset>/qa/<split>.jsonl` from the `qa` stage, images relative to
  that folder): yes/no, open attribute, description, counting, two-face comparison, faces by position in
  group photos, "no face visible", multi-turn, and retrieval as a `face_search` tool call.

`Collator` renders a batch with the processor's chat template and takes the loss mask from the template's
`{% generation %}` spans (`return_assistant_tokens_mask`), so only what the assistant says is learned and
the mask cannot drift from the template. `LengthBatches` groups samples of similar estimated length so a
batch is not padded to its one long multi-turn sample (CPU time is per token, padding included).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facevlm.data.qa_templates import HELDOUT, TEMPLATES
from facevlm.data.store import dataset_path, face_crop, iter_records, load_records
from facevlm.errors import FacevlmError
from facevlm.image import open_image
from facevlm.vlm.config import DataMix

DESCRIBE = [text for tid, text in TEMPLATES["describe"] if tid not in HELDOUT]


@dataclass
class Sample:
    """One conversation; images stay unopened (paths, or a record to crop) until the batch is built."""

    id: str
    messages: list[dict[str, Any]]
    images: list[Any]  # Path | RecordImage, in the order the image parts appear
    chars: int  # text length, for length grouping

    def conversation(self) -> list[dict[str, Any]]:
        """The messages with each image part carrying its opened PIL image (what the processor reads)."""
        opened = iter([_open(ref) for ref in self.images])
        out = []
        for msg in self.messages:
            content = msg.get("content")
            if isinstance(content, list):
                content = [{"type": "image", "image": next(opened)} if p.get("type") == "image" else p for p in content]
            out.append({**msg, "content": content})
        return out


@dataclass(frozen=True)
class RecordImage:
    """Row `index` of a stored dataset, cropped at `margin` when opened: records are read lazily, so
    listing 12k caption samples does not decode 12k images."""

    ds: Any
    index: int
    margin: float


def _open(ref: Any) -> Any:
    if isinstance(ref, RecordImage):
        (record,) = iter_records(ref.ds.select([ref.index]))
        return face_crop(record, margin=ref.margin)
    return open_image(ref)


def _chars(messages: list[dict[str, Any]]) -> int:
    return len(json.dumps([m.get("content") for m in messages] + [m.get("tool_calls") for m in messages]))


def caption_samples(mix: DataMix, seed: int = 0) -> list[Sample]:
    """align: "<describe question>" -> one of the record's captions, per record with a face box."""
    rng = random.Random(seed)
    out: list[Sample] = []
    for name in mix.datasets:
        ds = load_records(name, split=mix.split)
        rows = ds.select_columns(["id", "captions", "box"])
        n = 0
        for index, row in enumerate(rows):
            if not row["captions"]:
                continue
            for rep in range(mix.repeat.get(name, 1)):
                messages = [
                    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": rng.choice(DESCRIBE)}]},
                    {"role": "assistant", "content": [{"type": "text", "text": rng.choice(row["captions"])}]},
                ]
                image = RecordImage(ds, index, mix.crop_margin)
                out.append(Sample(f"{row['id']}/cap{rep}", messages, [image], _chars(messages)))
            n += 1
            if mix.max_samples and n >= mix.max_samples:
                break
    if not out:
        raise FacevlmError(f"data: no captioned records in {', '.join(mix.datasets)} (split {mix.split})")
    return out


def qa_samples(mix: DataMix) -> list[Sample]:
    """sft: the data engine's exported chat samples of `mix.split`, each dataset repeated `repeat` times."""
    out: list[Sample] = []
    for name in mix.datasets:
        qa_dir = dataset_path(name) / "qa"
        path = qa_dir / f"{mix.split}.jsonl"
        if not path.is_file():
            raise FacevlmError(f"{path}: no QA samples (the dataset's recipe needs a `qa:` stage)")
        rows = []
        with path.open() as fh:
            for line in fh:
                rows.append(json.loads(line))
                if mix.max_samples and len(rows) >= mix.max_samples:
                    break
        samples = [Sample(row["id"], row["messages"], [qa_dir / p for p in row.get("images", [])], 0) for row in rows]
        samples = pack_turns(samples, mix.pack) if mix.pack > 1 else samples
        samples += [s for s in samples if _ends_with_tool_call(s)] * (mix.call_repeat - 1)
        for rep in range(mix.repeat.get(name, 1)):
            out += [Sample(f"{s.id}#{rep}", s.messages, s.images, _chars(s.messages)) for s in samples]
    if not out:
        raise FacevlmError(f"data: no QA samples in {', '.join(mix.datasets)} (split {mix.split})")
    return out


def _ends_with_tool_call(sample: Sample) -> bool:
    return bool(sample.messages[-1].get("tool_calls"))


def pack_turns(samples: list[Sample], pack: int) -> list[Sample]:
    """Join up to `pack` single-image samples about the same picture into one multi-turn conversation (the
    picture shown once, in the first turn), in file order. Each picture's tokens are then paid once for
    several answers: on a CPU, where every prompt token costs a forward and a backward pass, that is ~1.7x
    more answers per second of training. Samples that end in a tool call stay alone: in a conversation a
    tool call is followed by its result, which the training data does not have."""
    out: list[Sample] = []
    groups: dict[Path, list[Sample]] = {}
    for sample in samples:
        if len(sample.images) != 1 or _ends_with_tool_call(sample):
            out.append(sample)
            continue
        group = groups.setdefault(sample.images[0], [])
        group.append(sample)
        if len(group) == pack:
            out.append(_joined(groups.pop(sample.images[0])))
    out += [_joined(group) for group in groups.values()]
    return out


def _joined(group: list[Sample]) -> Sample:
    if len(group) == 1:
        return group[0]
    messages = list(group[0].messages)
    for sample in group[1:]:
        for msg in sample.messages:
            content = msg.get("content")
            if isinstance(content, list):  # the picture was shown in the first turn
                msg = {**msg, "content": [p for p in content if p.get("type") != "image"]}
            messages.append(msg)
    return Sample("+".join(s.id for s in group), messages, group[0].images, 0)


class LengthBatches:
    """Shuffled batches of similar length: a pool of `pool` batches' worth of samples is sorted by estimated
    length (text + image tokens) and cut into batches, and the batches are shuffled again."""

    def __init__(self, samples: list[Sample], batch_size: int, image_tokens: int, seed: int = 0, pool: int = 16):
        self.samples, self.batch_size, self.seed, self.pool = samples, batch_size, seed, pool
        self.cost = [s.chars / 4 + image_tokens * len(s.images) for s in samples]  # ~4 characters per token

    def epoch(self, epoch: int) -> Iterator[list[Sample]]:
        rng = random.Random(self.seed * 1_000_003 + epoch)
        order = list(range(len(self.samples)))
        rng.shuffle(order)
        span = self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), span):
            chunk = sorted(order[start : start + span], key=lambda i: self.cost[i])
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        rng.shuffle(batches)
        for batch in batches:
            yield [self.samples[i] for i in batch]

    def __iter__(self) -> Iterator[list[Sample]]:
        epoch = 0
        while True:
            yield from self.epoch(epoch)
            epoch += 1


class Collator:
    """Samples -> model inputs with `labels` (-100 outside the assistant's spans and on padding).
    Samples longer than `max_length` tokens are dropped (counted in `dropped`), never truncated: a cut
    answer would teach the model to stop mid-sentence."""

    def __init__(self, processor: Any, max_length: int):
        from facevlm.vlm.build import has_generation_marks

        if not has_generation_marks(getattr(processor, "chat_template", None)):  # else every sample is dropped
            raise FacevlmError("the processor's chat template has no {% generation %} marks to take the loss mask from")
        self.processor, self.max_length, self.dropped = processor, max_length, 0

    def __call__(self, samples: list[Sample]) -> dict[str, Any] | None:
        # Samples with images first: transformers 5.19's processor cannot batch its image bookkeeping when
        # the batch's first sample has no image (a search by gallery face id) and a later one has.
        samples = sorted(samples, key=lambda s: -len(s.images))
        convs = [s.conversation() for s in samples]
        enc = self.processor.apply_chat_template(
            convs,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
            return_tensors="pt",
            processor_kwargs={"padding": True},
        )
        mask = enc.pop("assistant_masks")
        lengths = enc["attention_mask"].sum(1)
        keep = (lengths <= self.max_length) & (mask.sum(1) > 0)
        self.dropped += int((~keep).sum())
        if not bool(keep.any()):
            return None
        if not bool(keep.all()):
            return self([s for s, k in zip(samples, keep.tolist()) if k])
        labels = enc["input_ids"].masked_fill(mask == 0, -100)
        return {**enc, "labels": labels}
