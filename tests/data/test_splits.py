"""Identity-disjoint splits, grouping by source image, determinism, and near-duplicate removal."""

from __future__ import annotations

import io
import json
from collections import Counter

import pytest
from click.testing import CliRunner

from facevlm.data.splits import SplitConfig, assign_splits, group_key, near_duplicates, phash_bits, split_dataset
from facevlm.data.store import iter_records, load_records, save_records
from facevlm.errors import FacevlmError
from facevlm.schema import FaceRecord


def test_assign_splits_keeps_groups_whole_and_hits_fractions():
    groups = [f"id:p{i % 40}" for i in range(400)]  # 40 identities x 10 faces
    splits = assign_splits(groups, SplitConfig(val=0.1, test=0.2, seed=3))
    owner: dict[str, set[str]] = {}
    for g, s in zip(groups, splits):
        owner.setdefault(g, set()).add(s)
    assert all(len(v) == 1 for v in owner.values())
    assert Counter(splits) == {"train": 280, "test": 80, "val": 40}
    assert splits == assign_splits(groups, SplitConfig(val=0.1, test=0.2, seed=3))
    assert splits != assign_splits(groups, SplitConfig(val=0.1, test=0.2, seed=4))


def test_group_key_falls_back_to_source_image():
    assert group_key("p1", "img1") == "id:p1" and group_key(None, "img1") == "img:img1"


def test_bad_fractions_are_errors():
    with pytest.raises(FacevlmError, match="sum below 1"):
        SplitConfig(val=0.5, test=0.5)


def _noise(seed: int, size: int = 64):
    import numpy as np
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(
        (size, size), Image.Resampling.BICUBIC
    )
    return img.filter(ImageFilter.GaussianBlur(2))


def _recompressed(img):
    from PIL import Image

    buf = io.BytesIO()
    img.resize((60, 60)).resize((64, 64)).save(buf, format="JPEG", quality=40)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def test_near_duplicates_of_train_are_dropped():
    base = [_noise(i) for i in range(6)]
    images = base + [_recompressed(base[0]), _recompressed(base[1]), _noise(100)]
    splits = ["train"] * 6 + ["val", "test", "test"]
    cfg = SplitConfig()
    drop = near_duplicates(phash_bits(images, cfg), splits, cfg)
    assert set(drop) == {6, 7} and drop[6][0] == 0 and drop[7][0] == 1
    assert near_duplicates(phash_bits(images, cfg), splits, SplitConfig(hamming=0)).keys() <= {6, 7}


def test_split_dataset_end_to_end(tmp_path):
    records = []
    for i in range(60):  # 20 identities x 3 photos, plus 20 identity-less photos below
        records.append(FaceRecord(id=f"r{i}", image=_noise(i), source="t", licence="x", identity=f"p{i % 20}"))
    for i in range(20):
        records.append(
            FaceRecord(id=f"u{i}", image=_noise(1000 + i), source="t", licence="x", image_key=f"img{i // 2}")
        )
    # re-encoded copies of ten identity-less photos under new image keys: some will land in val/test
    for i in range(10):
        records.append(
            FaceRecord(
                id=f"dup{i}",
                image=_recompressed(records[60 + 2 * i].image),
                source="t",
                licence="x",
                image_key=f"copy{i}",
            )
        )
    src = save_records(records, tmp_path / "src")
    path, report = split_dataset(src, tmp_path / "out", SplitConfig(val=0.2, test=0.2, seed=1))
    out = list(iter_records(load_records(path)))
    owner: dict[str, set[str]] = {}
    for r in out:
        owner.setdefault(group_key(r.identity, r.image_key), set()).add(r.split)
    assert all(len(v) == 1 for v in owner.values())
    dropped = sum(report.dropped_duplicates.values())
    assert len(out) == 90 - dropped and dropped >= 1
    kept_ids = {r.id for r in out}
    # a near-duplicate pair never survives in two different splits (within one split it may)
    for i in range(10):
        pair = [r for r in out if r.id in (f"dup{i}", f"u{2 * i}")]
        assert len({r.split for r in pair}) <= 1
    assert set(load_records(path, split="val")["split"]) == {"val"}
    saved = json.loads((path / "split_report.json").read_text())
    assert saved["config"]["hamming"] == 4 and saved["faces"] == report.faces
    assert kept_ids and report.faces["train"] + report.faces.get("val", 0) + report.faces.get("test", 0) == len(out)


def test_split_cli(tmp_path, monkeypatch):
    from facevlm.cli import cli

    monkeypatch.setenv("FACEVLM_HOME", str(tmp_path))
    save_records(
        [FaceRecord(id=f"r{i}", image=_noise(i), source="t", licence="x", identity=f"p{i % 10}") for i in range(30)],
        tmp_path / "datasets" / "raw",
    )
    result = CliRunner().invoke(cli, ["data", "split", "raw", "raw-split", "--val", "0.1", "--test", "0.2"])
    assert result.exit_code == 0, result.output
    assert Counter(load_records("raw-split")["split"]) == {"train": 21, "test": 6, "val": 3}


def test_crop_hashes_are_the_same_in_worker_processes(tmp_path, monkeypatch):
    """Hashing in ranges on 2 workers gives the one-process hashes, row for row; the split keeps the stored
    image bytes as they were (it rewrites the split column only)."""
    import numpy as np
    from datasets import Image

    import facevlm.data.splits as splits

    def stored_bytes(path):
        return {r["id"]: r["image"]["bytes"] for r in load_records(path).cast_column("image", Image(decode=False))}

    records = [FaceRecord(id=f"r{i}", image=_noise(i), source="t", licence="x", identity=f"p{i}") for i in range(30)]
    src = save_records(records, tmp_path / "src")
    monkeypatch.setattr(splits, "HASH_CHUNK", 7)  # 5 ranges
    one = splits.crop_hashes(src, 30, SplitConfig(workers=1))
    two = splits.crop_hashes(src, 30, SplitConfig(workers=2))
    assert one.shape == (30, 8) and np.array_equal(one, two)
    path, _ = split_dataset(src, tmp_path / "out", SplitConfig(val=0.2, test=0.2, workers=2, dedup=True))
    kept = stored_bytes(path)
    assert kept and all(kept[i] == b for i, b in stored_bytes(src).items() if i in kept)
    with pytest.raises(FacevlmError, match="workers"):
        SplitConfig(workers=0)
