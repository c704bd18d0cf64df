"""Training samples: packing joins turns about one picture, batches carry loss only on the assistant."""

from __future__ import annotations

from pathlib import Path

from facevlm.vlm.data import Sample, pack_turns


def _qa(i: int, image: str, tool: bool = False) -> Sample:
    user = {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": f"q{i}?"}]}
    if tool:
        answer = {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {}}]}
    else:
        answer = {"role": "assistant", "content": [{"type": "text", "text": f"a{i}."}]}
    return Sample(f"s{i}", [user, answer], [Path(image)], 0)


def test_pack_joins_turns_about_one_picture_and_shows_it_once():
    samples = [_qa(0, "a.jpg"), _qa(1, "b.jpg"), _qa(2, "a.jpg"), _qa(3, "a.jpg", tool=True), _qa(4, "a.jpg")]
    packed = pack_turns(samples, 3)
    by_id = {s.id: s for s in packed}
    assert set(by_id) == {"s0+s2+s4", "s1", "s3"}
    joined = by_id["s0+s2+s4"]
    images = [
        p for m in joined.messages if isinstance(m["content"], list) for p in m["content"] if p["type"] == "image"
    ]
    assert len(images) == 1 and joined.images == [Path("a.jpg")]
    assert [m["content"][-1]["text"] for m in joined.messages] == ["q0?", "a0.", "q2?", "a2.", "q4?", "a4."]


def test_pack_one_is_the_identity():
    samples = [_qa(0, "a.jpg"), _qa(1, "a.jpg")]
    assert [s.id for s in pack_turns(samples, 1)] == ["s0", "s1"]


def test_collated_labels_cover_exactly_the_assistant_turns(tiny_vlm, toy_dataset):
    from transformers import AutoProcessor

    from facevlm.vlm.config import DataMix
    from facevlm.vlm.data import Collator, qa_samples

    processor = AutoProcessor.from_pretrained(tiny_vlm["align"])
    (sample,) = [s for s in qa_samples(DataMix(datasets=[str(toy_dataset)], pack=3)) if "+" in s.id][:1]
    batch = Collator(processor, 1024)([sample])
    labelled = processor.tokenizer.decode(batch["labels"][0][batch["labels"][0] != -100])
    answers = [p["text"] for m in sample.messages if m["role"] == "assistant" for p in m["content"]]
    assert labelled == "".join(a + "<|im_end|>" for a in answers)


def test_call_repeat_repeats_only_the_samples_that_end_in_a_call(toy_dataset):
    import pytest

    from facevlm.errors import FacevlmError
    from facevlm.vlm.config import DataMix
    from facevlm.vlm.data import _ends_with_tool_call, qa_samples

    once = qa_samples(DataMix(datasets=[str(toy_dataset)], pack=2))
    thrice = qa_samples(DataMix(datasets=[str(toy_dataset)], pack=2, call_repeat=3))
    calls = [s for s in once if _ends_with_tool_call(s)]
    assert calls and len(thrice) == len(once) + 2 * len(calls)
    assert sum(_ends_with_tool_call(s) for s in thrice) == 3 * len(calls)
    with pytest.raises(FacevlmError, match="call_repeat"):
        DataMix(call_repeat=0)
