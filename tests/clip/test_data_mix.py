"""The training mix: a small dataset oversampled by repetition beside a large one."""

from __future__ import annotations

import os

import pytest
import torch

from facevlm.clip.data import load_training_records
from facevlm.errors import DataError, FacevlmError


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


def test_holdout_keeps_the_held_out_identities_out_of_training(tmp_path) -> None:
    from fakes import coded_records

    from facevlm.clip.data import held_out
    from facevlm.data.store import save_records

    faces = str(save_records(coded_records(), tmp_path / "faces"))  # 8 identities
    every = load_training_records([faces], ["train"])
    kept = load_training_records([faces], ["train"], holdout={faces: 0.5})
    out = [i for i in every["identity"] if held_out(i, 0.5)]
    assert out and len(kept) == len(every) - len(out)
    assert not any(held_out(i, 0.5) for i in kept["identity"])
    assert not held_out(None, 0.5) and not held_out("x", 0.0)


def test_recipe_repeat_and_holdout_are_checked() -> None:
    from facevlm.clip.train_config import DataConfig

    assert DataConfig(datasets=["synthetic", "real"], repeat={"real": 60}, holdout={"real": 0.3}).repeat == {"real": 60}
    for bad, match in (
        ({"repeat": {"real": 2}}, "not in data.datasets"),
        ({"repeat": {"synthetic": 0}}, ">= 1"),
        ({"holdout": {"synthetic": 1.0}}, r"\[0, 1\)"),
    ):
        with pytest.raises(FacevlmError, match=match):
            DataConfig(datasets=["synthetic"], **bad)


def test_repeated_faces_are_cropped_once_and_give_the_same_samples(toy_dataset, tmp_path, monkeypatch) -> None:
    """A repeated set's crops are kept after their first decode (the rendered set's, drawn once, are not),
    and every sample equals the one a fresh decode gives."""
    import torch
    from fakes import toy_records

    from facevlm.clip import data
    from facevlm.clip.factory import create
    from facevlm.data.store import save_records

    small = save_records(toy_records(5, seed=7), tmp_path / "small")
    records = load_training_records([str(toy_dataset), str(small)], ["train"], repeat={str(small): 3})
    built = create("facevlm-clip-tiny", pretrained_towers=False, aug_cfg={"scale": [0.5, 1.0]})
    crops = []
    real_crop = data._face_crop
    monkeypatch.setattr(data, "_face_crop", lambda r, m: crops.append(r.id) or real_crop(r, m))
    cached = data.CaptionPairs(records, built.train_transform, built.tokenizer)
    n, big = len(cached), len(records) - 15
    keys = [(0, i) for i in range(n)] + [(1, i) for i in range(n)]
    got = [cached[k] for k in keys]
    assert len(cached._crops) == 5  # the small set's faces, not the big set's
    assert len(crops) == 2 * big + 5  # the big set cropped on each draw, the small one once
    monkeypatch.setattr(data, "CROP_CACHE_BYTES", 0)  # nothing kept: every sample decoded afresh
    fresh = data.CaptionPairs(records, built.train_transform, built.tokenizer)
    for k, (x, t) in zip(keys, got):
        x2, t2 = fresh[k]
        assert torch.equal(x, x2) and torch.equal(t, t2)
    assert not fresh._crops


class _Niceness(torch.utils.data.Dataset):
    """Each item: the niceness of the process that loads it."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> int:
        return os.nice(0)


def test_loader_workers_run_at_the_recipe_priority() -> None:
    """`data.worker_nice`: the loader worker decodes at a lower CPU priority than the training process (capped
    at 19, as the OS does); 0 leaves the workers alone; anything outside 0-19 is refused in the recipe."""
    from facevlm.clip.data import worker_init
    from facevlm.clip.train_config import DataConfig

    assert worker_init(0) is None
    loader = torch.utils.data.DataLoader(_Niceness(), batch_size=None, num_workers=1, worker_init_fn=worker_init(5))
    assert list(loader) == [min(os.nice(0) + 5, 19)] * 2
    for bad in (20, -1, True, 1.5):
        with pytest.raises(FacevlmError, match="worker_nice"):
            DataConfig(worker_nice=bad)
