"""Export round trips: open_clip_train's own CsvDataset reads the CSV; `datasets`' webdataset loader reads
the shards; chat JSONL references written crops."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from facevlm.data.export import ExportConfig, export_dataset
from facevlm.data.schema import FaceRecord
from facevlm.data.store import save_records
from facevlm.errors import FacevlmError


def _image(seed: int):
    import numpy as np
    from PIL import Image

    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (80, 100, 3), dtype=np.uint8))


@pytest.fixture()
def stored(tmp_path):
    records = []
    for i in range(7):
        r = FaceRecord(id=f"src/{i}", image=_image(i), source="t", licence="CC0", box=[10, 10, 60, 70],
                       split="train" if i < 5 else "test", identity=f"p{i}",
                       captions=[f"A face number {i}.", f"Another\tcaption {i}."] if i != 3 else [])
        r.set("Smiling", i % 2)
        records.append(r)
    return save_records(records, tmp_path / "ds")


def test_csv_reads_like_open_clip_train(stored, tmp_path):
    """open_clip_train's CsvDataset is `pd.read_csv(path, sep)` + the `filepath`/`title` columns (its
    module also imports webdataset/braceexpand, which the main env does not need, so we read the same way)."""
    import pandas as pd
    from PIL import Image

    report = export_dataset(stored, tmp_path / "csv", ExportConfig(format="csv", size=32))
    assert report.rows == {"train": 8, "test": 4} and report.skipped == {"no caption": 1}
    df = pd.read_csv(tmp_path / "csv" / "train.csv", sep="\t")
    assert list(df.columns) == ["filepath", "title"] and len(df) == 8
    assert Image.open(df["filepath"][1]).size == (32, 32)
    assert df["title"][1] == "Another caption 0."  # tabs inside captions are flattened
    assert df["filepath"][0] == df["filepath"][1]  # rows=caption: one row per caption of the same crop
    per_image = export_dataset(stored, tmp_path / "csv1", ExportConfig(format="csv", rows="image"))
    assert per_image.rows == {"train": 4, "test": 2}


def test_wds_shards_read_back_with_datasets(stored, tmp_path):
    from datasets import load_dataset

    report = export_dataset(stored, tmp_path / "wds", ExportConfig(format="wds", samples_per_shard=3))
    train = report.files["train"]
    assert [p.rsplit("/", 1)[1] for p in train] == ["train-000000.tar", "train-000001.tar"]
    ds = load_dataset("webdataset", data_files={"train": train}, split="train")
    assert len(ds) == 4 and ds[0]["__key__"] == "000000" and ds[3]["__key__"] == "000003"
    assert ds[0]["txt"] == "A face number 0." and ds[0]["json"]["id"] == "src/0"
    assert ds[0]["json"]["attributes"][0]["name"] == "Smiling" and ds[0]["jpg"].size == (70, 84)  # box 50x60 + 20% margin each side


def test_chat_export_links_every_image_ref(stored, tmp_path):
    from facevlm.data.qa import QAConfig

    report = export_dataset(stored, tmp_path / "chat", ExportConfig(format="chat"), QAConfig(per_face=3))
    assert set(report.rows) == {"train", "test"}
    for split in ("train", "test"):
        samples = [json.loads(x) for x in (tmp_path / "chat" / f"{split}.jsonl").read_text().splitlines()]
        assert len(samples) == report.rows[split] > 0
        for sample in samples:
            refs = [part["image"] for m in sample["messages"] if isinstance(m.get("content"), list)
                    for part in m["content"] if part.get("type") == "image"]
            assert refs == sample["images"]  # every image part was rewritten to a written file
            assert all((tmp_path / "chat" / r).is_file() and r.startswith(f"images/{split}/") for r in refs)
            assert sample["split"] == split


def test_export_cli_and_bad_args(stored, tmp_path):
    from facevlm.cli import cli

    result = CliRunner().invoke(cli, ["data", "export", str(stored), "--format", "wds", "--out",
                                      str(tmp_path / "w"), "--split", "test"])
    assert result.exit_code == 0, result.output
    assert "test: 2 rows in 1 file(s)" in result.output
    with pytest.raises(FacevlmError, match="export format"):
        ExportConfig(format="parquet")
