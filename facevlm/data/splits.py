"""Identity-disjoint train/val/test splits with near-duplicate removal across them.

Why: a face model evaluated on people it saw in training measures memory, not generalisation, and the
same photo re-encoded or re-cropped in train and test inflates every metric. So whole *groups* go to one
split (the identity when known, else the source image, so the faces of one photo stay together), and any
val/test face whose perceptual hash (imagehash.phash of the face crop) is within a Hamming radius of a
train face (or a test face near a val face) is dropped and counted. Everything is a pure function of the
records and the seed, so a split is reproducible.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from facevlm.errors import FacevlmError
from facevlm.procs import worker_context

SPLITS = ("train", "val", "test")


@dataclass
class SplitConfig:
    val: float = 0.1  # fraction of faces (approximately: whole groups are assigned)
    test: float = 0.2
    seed: int = 0
    dedup: bool = True
    hamming: int = 4  # max phash Hamming distance (of hash_size**2 bits) that counts as a near-duplicate
    hash_size: int = 8
    crop_size: int = 64  # face crops are hashed at this size
    workers: int | None = None  # processes hashing (None: every core for 1,000+ faces, else this one)

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise FacevlmError(f"split workers must be >= 1, not {self.workers}")
        if not (0 <= self.val < 1 and 0 <= self.test < 1 and self.val + self.test < 1):
            raise FacevlmError(f"split fractions val={self.val}, test={self.test} must be >= 0 and sum below 1")
        if self.hamming < 0:
            raise FacevlmError(f"hamming threshold must be >= 0, not {self.hamming}")


@dataclass
class SplitReport:
    faces: dict[str, int] = field(default_factory=dict)  # kept faces per split
    groups: dict[str, int] = field(default_factory=dict)  # identities / source images per split
    dropped_duplicates: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)  # "val id ~ train id (distance d)"

    def lines(self) -> list[str]:
        out = [
            f"{s:<5} {self.faces.get(s, 0):>7} faces  {self.groups.get(s, 0):>6} groups  "
            f"{self.dropped_duplicates.get(s, 0):>5} near-duplicates dropped"
            for s in SPLITS
        ]
        return out + [f"  e.g. {e}" for e in self.examples[:5]]


def group_key(identity: str | None, image_key: str) -> str:
    """Identity when known; else the source image, so faces of one photo never straddle splits."""
    return f"id:{identity}" if identity else f"img:{image_key}"


def assign_splits(groups: Sequence[str], cfg: SplitConfig) -> list[str]:
    """A split name per item such that every group lands in exactly one split.

    Groups are visited in a seeded random order and fill test, then val, up to their target share of
    items; the rest is train. A target is exceeded by at most one group.
    """
    sizes = Counter(groups)
    order = sorted(sizes)
    random.Random(cfg.seed).shuffle(order)
    total = len(groups)
    targets = {"test": cfg.test * total, "val": cfg.val * total}
    filled = {"test": 0, "val": 0}
    where: dict[str, str] = {}
    for g in order:
        split = next((s for s in ("test", "val") if filled[s] < targets[s]), "train")
        where[g] = split
        if split != "train":
            filled[split] += sizes[g]
    return [where[g] for g in groups]


def phash_bits(images: Iterable[Any], cfg: SplitConfig):
    """Packed perceptual hashes (uint8 rows) of PIL images, consumed one at a time."""
    import imagehash
    import numpy as np

    rows = [np.packbits(imagehash.phash(img, hash_size=cfg.hash_size).hash.flatten()) for img in images]
    return np.stack(rows) if rows else np.zeros((0, cfg.hash_size**2 // 8), dtype=np.uint8)


HASH_CHUNK = 512  # faces per task of a hashing worker


def crop_hashes(src: str | Path, n: int, cfg: SplitConfig):
    """`phash_bits` of the face crops of stored dataset `src`'s `n` records, in order. Each worker opens the
    dataset itself (memory-mapped) and hashes a range of rows, as one process would, so the hashes are the
    same for any number of workers; on 2 cores two halve the ~20 s a 12k-face set took in one."""
    import numpy as np
    from tqdm import tqdm

    workers = cfg.workers or ((os.cpu_count() or 1) if n >= 1000 else 1)
    ranges = [(str(src), start, min(start + HASH_CHUNK, n), cfg) for start in range(0, n, HASH_CHUNK)]
    if workers == 1 or len(ranges) == 1:
        return _hash_rows(str(src), 0, n, cfg)
    with worker_context().Pool(min(workers, len(ranges))) as pool:
        parts = list(tqdm(pool.imap(_hash_range, ranges), total=len(ranges), desc="phash", unit="chunk", leave=False))
    return np.concatenate(parts)


def _hash_range(task: tuple[str, int, int, SplitConfig]):
    return _hash_rows(*task)


def _hash_rows(src: str, start: int, stop: int, cfg: SplitConfig):
    from facevlm.data.store import face_crop, iter_records, load_records

    ds = load_records(src)
    rows = ds if (start, stop) == (0, len(ds)) else ds.select(range(start, stop))
    return phash_bits((face_crop(r, size=cfg.crop_size) for r in iter_records(rows)), cfg)


def near_duplicates(hashes, splits: Sequence[str], cfg: SplitConfig) -> dict[int, tuple[int, int]]:
    """index -> (index of the earlier-split item it duplicates, distance) for val/test items to drop.

    val is checked against train, test against train and the val items that were kept. FAISS's binary
    flat index gives exact Hamming nearest neighbours.
    """
    import faiss
    import numpy as np

    drop: dict[int, tuple[int, int]] = {}
    reference = [i for i, s in enumerate(splits) if s == "train"]
    for split in ("val", "test"):
        queries = [i for i, s in enumerate(splits) if s == split]
        if reference and queries:
            index = faiss.IndexBinaryFlat(hashes.shape[1] * 8)
            index.add(np.ascontiguousarray(hashes[reference]))
            dist, nn = index.search(np.ascontiguousarray(hashes[queries]), 1)
            for q, d, n in zip(queries, dist[:, 0], nn[:, 0]):
                if d <= cfg.hamming:
                    drop[q] = (reference[n], int(d))
        reference = reference + [i for i in queries if i not in drop]
    return drop


def split_dataset(src: str | Path, out: str | Path, cfg: SplitConfig) -> tuple[Path, SplitReport]:
    """Read stored dataset `src`, assign identity-disjoint splits, drop near-duplicates, save to `out`."""
    from facevlm.data.store import iter_records, load_records, save_records

    ds = load_records(src)
    meta = ds.select_columns(["id", "identity", "image_key"])
    groups = [group_key(i, k) for i, k in zip(meta["identity"], meta["image_key"])]
    splits = assign_splits(groups, cfg)
    drop: dict[int, tuple[int, int]] = {}
    if cfg.dedup and len(ds):
        drop = near_duplicates(crop_hashes(src, len(ds), cfg), splits, cfg)
    ids = meta["id"]
    report = SplitReport(
        faces=dict(Counter(s for i, s in enumerate(splits) if i not in drop)),
        groups=dict(Counter(s for s, _ in set(zip(splits, groups)))),
        dropped_duplicates=dict(Counter(splits[i] for i in drop)),
        examples=[
            f"{splits[i]} {ids[i]} ~ {splits[j]} {ids[j]} (distance {d})" for i, (j, d) in list(drop.items())[:20]
        ],
    )

    def records():
        for i, record in enumerate(iter_records(ds, decode=False)):  # the same image bytes, a new split
            if i not in drop:
                record.split = splits[i]
                yield record

    path = save_records(records(), out)
    (path / "split_report.json").write_text(json.dumps({"config": asdict(cfg), **asdict(report)}, indent=2))
    return path, report


@click.command("split", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("src")
@click.argument("out")
@click.option("--val", type=float, default=0.1, show_default=True, help="Fraction of faces for validation.")
@click.option("--test", type=float, default=0.2, show_default=True, help="Fraction of faces for test.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--hamming",
    type=int,
    default=4,
    show_default=True,
    help="Max phash Hamming distance (of 64 bits) treated as a near-duplicate.",
)
@click.option("--no-dedup", is_flag=True, help="Keep near-duplicates (no perceptual hashing).")
def split_cmd(src: str, out: str, val: float, test: float, seed: int, hamming: int, no_dedup: bool) -> None:
    """Split stored dataset SRC into identity-disjoint train/val/test, saved as OUT (name or path).

    Faces without an identity are grouped by source image. Val/test faces that are near-duplicates of a
    train face (or test of val) are dropped and counted; the report is saved as split_report.json.
    """
    from facevlm.data.store import dataset_path

    cfg = SplitConfig(val=val, test=test, seed=seed, dedup=not no_dedup, hamming=hamming)
    path, report = split_dataset(dataset_path(src), dataset_path(out), cfg)
    for line in report.lines():
        click.echo(line)
    click.echo(f"saved to {path}")
