"""The shared zero-shot prompt table: schema coverage, FineCLIPER-style negatives, and wiring."""

from __future__ import annotations

import re

import pytest

from facevlm.clip import prompts
from facevlm.errors import FacevlmError
from facevlm.schema import VOCABULARY

NEGATION = re.compile(r"\b(not|no|without|non)\b", re.IGNORECASE)


def test_every_vocabulary_attribute_has_its_own_phrasings() -> None:
    binary = {a for a, s in VOCABULARY.items() if s.kind == "binary"}
    assert binary <= set(prompts.BINARY), sorted(binary - set(prompts.BINARY))
    for attribute, spec in VOCABULARY.items():
        if spec.kind == "categorical":
            assert list(prompts.CATEGORICAL[attribute]) == list(spec.values), attribute


def test_negatives_describe_the_opposite_state_instead_of_negating() -> None:
    # a contrastive text tower embeds "not smiling" next to "smiling": no table phrasing may negate
    for attribute, (pos, neg) in prompts.BINARY.items():
        assert pos and neg and not set(pos) & set(neg), attribute
        for phrase in pos + neg:
            assert not NEGATION.search(phrase), (attribute, phrase)
    for attribute, table in prompts.CATEGORICAL.items():
        for phrase in (p for ps in table.values() for p in ps):
            assert not NEGATION.search(phrase), (attribute, phrase)
    assert len(prompts.BINARY["Smiling"][1]) >= 3  # several phrasings of "not smiling"


def test_binary_prompts_are_templated_and_mirrored() -> None:
    table = prompts.attribute_prompts("Eyeglasses")
    assert list(table) == ["true", "false"]
    pos, states = table["true"]
    n_pos, n_neg = (len(side) for side in prompts.BINARY["Eyeglasses"])
    assert len(pos) == n_pos * len(prompts.TEMPLATES)
    # each opposite state is its own templated ensemble, and the "false" side mirrors "true"
    assert states == [prompts.templated((p,)) for p in prompts.BINARY["Eyeglasses"][1]] and len(states) == n_neg
    false_pos, false_states = table["false"]
    assert false_pos == [p for state in states for p in state] and sum(false_states, []) == pos
    assert "a photo of a person wearing eyeglasses." in pos
    assert prompts.binary_sides("Smiling")[0][0] == "a smiling person"


def test_categorical_negatives_are_the_other_values() -> None:
    table = prompts.attribute_prompts("expression")
    assert list(table) == list(VOCABULARY["expression"].values)
    pos, states = table["surprise"]
    assert all(t.format(p) in pos for p in prompts.CATEGORICAL["expression"]["surprise"] for t in prompts.TEMPLATES)
    others = [v for v in table if v != "surprise"]
    assert states == [prompts.templated((prompts.CATEGORICAL["expression"][v][0],)) for v in others]
    assert not any("surprised" in p for state in states for p in state)


@pytest.mark.parametrize("attribute, message", [("age", "numeric"), ("Hat_Size", "not in"), ("yaw", "numeric")])
def test_bad_attributes(attribute: str, message: str) -> None:
    with pytest.raises(FacevlmError, match=message):
        prompts.attribute_prompts(attribute)


def test_kind_mismatch() -> None:
    with pytest.raises(FacevlmError, match="not binary"):
        prompts.binary_sides("expression")
    with pytest.raises(FacevlmError, match="not categorical"):
        prompts.value_phrases("Smiling")


def test_single_source_of_truth() -> None:
    # FaceCLIP's head and the benchmark's zeroshot task read this table (VQA asks in the data engine's
    # held-out QA templates instead: tests/eval/test_vqa.py)
    from facevlm.clip import inference
    from facevlm.eval.tasks import zeroshot

    assert inference.attribute_prompts is prompts.attribute_prompts
    assert zeroshot.build_head is inference.build_head
