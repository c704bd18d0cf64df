"""Face-caption pairs for contrastive training, with a resumable, rank-sharded order.

Every sample is addressed by (epoch, index), and everything random about it -- which of the record's
captions is used and the augmentation of its crop -- is drawn from a generator seeded by
(seed, epoch, index). The order of indices is a permutation seeded by (seed, epoch). So a run resumed
at step N sees exactly the batches an uninterrupted run would, whatever the number of loader workers.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from facevlm.errors import DataError
from facevlm.schema import FaceRecord, from_row


def _face_crop(record: FaceRecord, margin: float) -> Any:
    """The training crop: the one crop rule (facevlm.vision.crop), which the gallery embeds too."""
    from facevlm.data.store import face_crop

    return face_crop(record, size=None, margin=margin)


class CaptionPairs(Dataset):
    """(image tensor, caption tokens) for each face that has at least one caption.

    `records` is a stored dataset (`datasets.Dataset` of `schema.hf_features()` rows) or a sequence of
    FaceRecords; rows are decoded lazily so a large dataset is never held in memory as images.
    """

    def __init__(
        self,
        records: Any,
        transform: Callable,
        tokenizer: Callable,
        *,
        seed: int = 0,
        crop_margin: float = 0.2,
        name: str = "dataset",
    ):
        self.records = records
        self.transform = transform
        self.tokenizer = tokenizer
        self.seed = seed
        self.crop_margin = crop_margin
        captions, *crop_of = _columns(records, ("captions", "id", "image_key", "box"))
        self.index = [i for i, caps in enumerate(captions) if caps and any(c.strip() for c in caps)]
        if not self.index:
            raise DataError(f"{name}: no record has a caption; run `facevlm data caption` first")
        self._captions = captions
        keys = [_crop_key(*row) for row in zip(*crop_of)]
        seen = Counter(keys[j] for j in self.index)
        self._keys = [keys[j] if seen[keys[j]] > 1 else None for j in self.index]  # None: drawn once per epoch
        self._crops: dict[tuple, Any] = {}
        self._crop_bytes = 0

    def __len__(self) -> int:
        return len(self.index)

    def record(self, i: int) -> FaceRecord:
        j = self.index[i]
        return from_row(self.records[j]) if _is_hf(self.records) else self.records[j]

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, i = key
        rng = random.Random(f"{self.seed}/{epoch}/{i}")
        caption = rng.choice([c for c in self._captions[self.index[i]] if c.strip()])
        image = self._crop(i)
        with _seeded(rng.getrandbits(63)):
            pixels = self.transform(image)
        return pixels, self.tokenizer([caption])[0]

    def _crop(self, i: int) -> Any:
        """The face crop of sample `i` (upright RGB, as open_image gives everywhere), before augmentation.

        A face that occurs more than once (a small real set repeated beside a large rendered one) is decoded
        and cropped once and kept, up to `CROP_CACHE_BYTES`: a real photo is a large JPEG, and decoding and
        cropping it again for each of its 60 repeats took ~20 ms against ~2 ms for a render. On the default
        mix a sample then costs 5.5 instead of 9.7 ms, and training runs ~11% more samples/s on 2 cores
        (docs/benchmarks.md). The crop is the same either way (it draws nothing random)."""
        key = self._keys[i]
        crop = self._crops.get(key) if key is not None else None
        if crop is None:
            crop = _face_crop(self.record(i), self.crop_margin)
            size = crop.width * crop.height * len(crop.getbands())
            if key is not None and self._crop_bytes + size <= CROP_CACHE_BYTES:
                self._crops[key] = crop
                self._crop_bytes += size
        return crop


CROP_CACHE_BYTES = 256 * 2**20  # per CaptionPairs (and loader worker): the repeated faces' crops it keeps


def _crop_key(face_id: str, image_key: str, box: Sequence[float] | None) -> tuple:
    """What makes two rows the same crop: the face, its image and its box (ids alone may repeat across sets)."""
    return face_id, image_key, tuple(box) if box is not None else None


def _columns(records: Any, names: Sequence[str]) -> list[list[Any]]:
    """Columns of a stored dataset (read without decoding its images) or of a sequence of FaceRecords."""
    if _is_hf(records):  # one read into lists: a datasets Column reads its table again on every index
        columns = records.select_columns(list(names)).to_dict()
        return [columns[n] for n in names]
    return [[getattr(r, n) for r in records] for n in names]


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed the global RNGs augmentations draw from (torchvision: torch; open_clip's colour jitter and
    grayscale: python `random`), restoring them afterwards so training RNG streams are untouched.

    Only the CPU generator is seeded: `torch.manual_seed` also queues a seed for every accelerator backend
    and, with a CUDA build and no GPU initialised, formats a traceback of the call each time, work thrown
    away once per sample. The transforms draw from the CPU generator only, so the samples are the same."""
    state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            random.setstate(state)


def _is_hf(records: Any) -> bool:
    return hasattr(records, "column_names")


class EpochSampler(Sampler):
    """Yields (epoch, index) keys forever, from a given micro-batch on, for one rank.

    Each epoch is a seeded permutation split round-robin over ranks and cut to whole batches (every
    rank gets the same number of batches, as DDP requires).
    """

    def __init__(
        self, size: int, batch_size: int, *, seed: int = 0, rank: int = 0, world_size: int = 1, start_batch: int = 0
    ):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size, self.start_batch = rank, world_size, start_batch
        if self.batches_per_epoch == 0:
            raise DataError(
                f"{size} captioned faces cannot fill one batch of {batch_size} on each of "
                f"{world_size} rank(s); lower batch_size"
            )

    @property
    def batches_per_epoch(self) -> int:
        return self.size // self.world_size // self.batch_size

    def epoch_order(self, epoch: int) -> Sequence[int]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.size, generator=gen)[self.rank :: self.world_size]
        return order[: self.batches_per_epoch * self.batch_size].tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, batch = divmod(self.start_batch, self.batches_per_epoch)
        while True:
            order = self.epoch_order(epoch)
            for i in order[batch * self.batch_size :]:
                yield epoch, i
            epoch, batch = epoch + 1, 0


def worker_init(niceness: int) -> Callable[[int], None] | None:
    """A DataLoader `worker_init_fn` that lowers each loader worker's CPU priority by `niceness` (None: 0).

    Why: on a machine with as many busy training threads as cores, a worker at the same priority takes turns
    with them and the step gets no faster than decoding in process; at the lowest priority it runs in the gaps
    the step leaves (Python between ops, one thread waiting on the other). Samples are the same either way."""
    return functools.partial(_lower_priority, niceness) if niceness and hasattr(os, "nice") else None


def _lower_priority(niceness: int, worker_id: int) -> None:
    os.nice(niceness)


HOLDOUT_SALT = "facevlm-calibration-holdout-v1"


def held_out(identity: str | None, fraction: float) -> bool:
    """Whether faces of `identity` are kept out of training so the model can be calibrated on them: a salted
    hash of the identity below `fraction`. It depends only on the name and the fraction, so `facevlm eval
    calibrate` finds the same faces from the model's recipe; faces without an identity are never held out.
    (A model calibrated on faces it was trained on would find its memorised answers "reliable".)"""
    if not identity or fraction <= 0:
        return False
    digest = hashlib.sha256(f"{HOLDOUT_SALT}:{identity}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def load_training_records(
    names: Sequence[str],
    splits: Sequence[str],
    max_records: int | None = None,
    repeat: Mapping[str, int] | None = None,
    holdout: Mapping[str, float] | None = None,
) -> Any:
    """Concatenate the requested splits of stored face datasets (names or paths), dataset `name` repeated
    `repeat[name]` times (default 1): oversampling a small set (82 real faces beside 20k rendered ones).
    Each copy is its own run of indices, so every repetition draws its own caption and augmentation.
    `holdout[name]`: the fraction of that dataset's identities left out for calibration (`held_out`)."""
    from datasets import concatenate_datasets

    from facevlm.data.store import load_records

    repeat = dict(repeat or {})
    unknown = sorted(set(repeat) - set(names))
    bad = {k: v for k, v in repeat.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1}
    if unknown or bad:
        raise DataError(
            f"data.repeat: {', '.join(unknown)} not in data.datasets" if unknown else f"data.repeat {bad}: must be >= 1"
        )
    parts = []
    for name in names:
        ds = load_records(name)
        if splits:
            wanted = set(splits)
            ds = ds.filter(lambda s, wanted=wanted: s in wanted, input_columns="split", keep_in_memory=True)
        fraction = (holdout or {}).get(name, 0.0)
        if fraction > 0:
            ds = ds.filter(lambda i, f=fraction: not held_out(i, f), input_columns="identity", keep_in_memory=True)
        if len(ds):
            parts += [ds] * repeat.get(name, 1)
    if not parts:
        raise DataError(f"datasets {', '.join(names)}: no record in split(s) {', '.join(splits)}")
    ds = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    if max_records is not None and len(ds) > max_records:
        ds = ds.shuffle(seed=0, keep_in_memory=True).select(range(max_records))
    return ds
