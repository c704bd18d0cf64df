"""The training mix: a small dataset oversampled by repetition beside a large one."""

from __future__ import annotations

import pytest

from facevlm.clip.data import load_training_records
from facevlm.errors import DataError


def test_repeat_oversamples_one_dataset(toy_dataset, tmp_path) -> None:
    from fakes import toy_records

    from facevlm.data.store import save_records

    small = save_records(toy_records(5, seed=7), tmp_path / "small")
    once = load_training_records([str(toy_dataset), str(small)], ["train"])
    mixed = load_training_records([str(toy_dataset), str(small)], ["train"], repeat={str(small): 3})
    assert len(mixed) == len(once) + 2 * 5
    ids = list(mixed["id"])
    small_ids = list(load_training_records([str(small)], ["train"])["id"])
    assert ids[: len(once) - 5] == list(once["id"])[: len(once) - 5]  # the big set once, in order
    assert ids[len(once) - 5 :] == small_ids * 3  # then the small one three times


@pytest.mark.parametrize("repeat, match", [({"nope": 2}, "not in data.datasets"), ({"x": 0}, ">= 1")])
def test_bad_repeat_is_refused(toy_dataset, repeat, match) -> None:
    names = [str(toy_dataset)] + (["x"] if "x" in repeat else [])
    with pytest.raises(DataError, match=match):
        load_training_records(names, ["train"], repeat=repeat)
