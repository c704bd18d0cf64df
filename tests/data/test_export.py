"""Export round trips: open_clip_train's own CsvDataset reads the CSV; `datasets`' webdataset loader reads
the shards; chat JSONL references written crops."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner

from facevlm.data.export import ExportConfig, export_dataset
from facevlm.data.store import save_records
from facevlm.errors import FacevlmError
from facevlm.schema import FaceRecord


def _image(seed: int):
    import numpy as np
    from PIL import Image

    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (80, 100, 3), dtype=np.uint8))


@pytest.fixture()
def stored(tmp_path):
    records = []
    for i in range(7):
        r = FaceRecord(
            id=f"src/{i}",
            image=_image(i),
            source="t",
            licence="CC0",
            box=[10, 10, 60, 70],
            split="train" if i < 5 else "test",
            identity=f"p{i}",
            captions=[f"A face number {i}.", f"Another\tcaption {i}."] if i != 3 else [],
        )
        r.set("Smiling", i % 2)
        records.append(r)
    return save_records(records, tmp_path / "ds")


def test_csv_reads_like_open_clip_train(stored, tmp_path):
    """open_clip_train's CsvDataset is `pd.read_csv(path, sep)` + the `filepath`/`title` columns (its
    module also imports webdataset/braceexpand, which the main env does not need, so we read the same way)."""
    import pandas as pd
    from PIL import Image

    report = export_dataset(stored, tmp_path / "csv", ExportConfig(format="csv", size=32))
    assert report.rows == {"train": 8, "test": 4} and report.skipped == {"records without a caption": 1}
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
    assert ds[0]["json"]["attributes"][0]["name"] == "Smiling" and ds[0]["jpg"].size == (
        70,
        84,
    )  # box 50x60 + 20% margin each side


def test_chat_export_links_every_image_ref(stored, tmp_path):
    from facevlm.data.qa import QAConfig

    report = export_dataset(stored, tmp_path / "chat", ExportConfig(format="chat"), QAConfig(per_face=3))
    assert set(report.rows) == {"train", "test"}
    for split in ("train", "test"):
        samples = [json.loads(x) for x in (tmp_path / "chat" / f"{split}.jsonl").read_text().splitlines()]
        assert len(samples) == report.rows[split] > 0
        for sample in samples:
            refs = [
                part["image"]
                for m in sample["messages"]
                if isinstance(m.get("content"), list)
                for part in m["content"]
                if part.get("type") == "image"
            ]
            assert refs == sample["images"]  # every image part was rewritten to a written file
            assert all((tmp_path / "chat" / r).is_file() and r.startswith(f"images/{split}/") for r in refs)
            assert sample["split"] == split


def _chat(out, split: str) -> list[dict]:
    return [json.loads(x) for x in (out / f"{split}.jsonl").read_text().splitlines()]


def test_chat_counting_refs_get_the_whole_uncropped_photo(stored, tmp_path):
    """`full:<id>` (counting questions) must show every face, so the source photo is written as is."""
    import numpy as np
    from PIL import Image

    from facevlm.data.qa import QAConfig

    out = tmp_path / "chat"
    report = export_dataset(stored, out, ExportConfig(format="chat", size=32), QAConfig(per_face=1, kinds={"count": 1}))
    samples = _chat(out, "train") + _chat(out, "test")
    assert len(samples) == sum(report.rows.values()) == 7 and not report.skipped
    for sample in samples:
        assert sample["turns"][0]["kind"] == "count" and len(sample["images"]) == 1
        full = Image.open(out / sample["images"][0])
        source = _image(int(sample["record_ids"][0].split("/")[1]))
        assert full.size == source.size == (100, 80)  # not the 32x32 crop, not the 50x60 face box
        luma = [np.asarray(im.convert("L"), dtype=np.int16) for im in (full, source)]
        assert np.abs(luma[0] - luma[1]).mean() < 5  # the same photo, up to JPEG (another one differs by ~56)


def test_full_photo_of_a_shared_image_written_once(tmp_path):
    from facevlm.data.export.chat import _ImageWriter
    from facevlm.data.noface import Backgrounds

    image = _image(0)
    faces = [
        FaceRecord(id=f"p/{i}", image=image, source="t", licence="CC0", box=box, image_key="p", n_faces=2)
        for i, box in enumerate(([5, 5, 40, 40], [50, 10, 90, 60]))
    ]
    writer = _ImageWriter(tmp_path, "train", ExportConfig(format="chat"), Backgrounds())
    assert [r.id for r in writer.stream(iter(faces))] == ["p/0", "p/1"]
    crops = [writer.resolve("p/0"), writer.resolve("p/1")]
    assert crops[0] != crops[1] and writer.resolve("full:p/0") == writer.resolve("full:p/1")
    assert len(list((tmp_path / "images" / "train").glob("full-*.jpg"))) == 1
    assert writer.resolve("nope") is None and writer.resolve("full:nope") is None


def test_chat_keeps_text_only_samples(stored, tmp_path):
    """Searches by gallery face id carry no image; they are written with `images: []`, never dropped."""
    from facevlm.data.qa import QAConfig, qa_samples
    from facevlm.data.store import iter_records, load_records

    qa_cfg = QAConfig(per_face=6, kinds={"ret": 1})
    report = export_dataset(stored, tmp_path / "chat", ExportConfig(format="chat"), qa_cfg)
    ds = load_records(stored)
    expected = sum(
        1
        for s in ("train", "test")
        for _ in qa_samples(iter_records(ds.filter(lambda r, s=s: r["split"] == s)), qa_cfg)
    )
    samples = _chat(tmp_path / "chat", "train") + _chat(tmp_path / "chat", "test")
    assert len(samples) == sum(report.rows.values()) == expected and not report.skipped
    text_only = [s for s in samples if not s["images"]]
    assert text_only, "no search-by-face-id sample was generated; raise per_face"
    for sample in text_only:
        assert not any(p.get("type") == "image" for m in sample["messages"] for p in m.get("content") or [])
        args = json.loads(sample["messages"][1]["tool_calls"][0]["function"]["arguments"])
        assert "face_id" in args["query"]["face"]


def test_unresolved_image_ref_is_reported_not_written():
    from facevlm.data.export.chat import _link_images

    sample = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": "a"},
                    {"type": "image", "image": "full:b"},
                    {"type": "text", "text": "?"},
                ],
            }
        ]
    }
    found, missing = [], []
    linked = _link_images(sample, {"a": "images/x/0.jpg"}.get, found, missing)
    assert found == ["images/x/0.jpg"] and missing == ["full:b"]
    assert (
        linked["messages"][0]["content"][0]["image"] == "images/x/0.jpg"
        and sample["messages"][0]["content"][0]["image"] == "a"
    )


def test_export_cli_and_bad_args(stored, tmp_path):
    from facevlm.cli import cli

    result = CliRunner().invoke(
        cli, ["data", "export", str(stored), "--format", "wds", "--out", str(tmp_path / "w"), "--split", "test"]
    )
    assert result.exit_code == 0, result.output
    assert "test: 2 rows in 1 file(s)" in result.output
    with pytest.raises(FacevlmError, match="export format"):
        ExportConfig(format="parquet")


def test_chat_export_writes_face_free_images_and_group_photos(tmp_path, assets_home):
    """`bg:` / `nofacecrop:` refs become written files (the renderer's background at the record's size, the
    photo's face-free square); positions on a photo split between train and dev still see all its faces."""
    import numpy as np
    from photo_fixtures import group, photo_set
    from PIL import Image

    from facevlm.data.qa import QAConfig
    from facevlm.data.synth import SynthConfig, generate

    synthetic = list(generate(SynthConfig(n_identities=4, per_identity=1, seed=5), workers=1))
    for r in synthetic:
        r.split = "dev"
    records = photo_set(2) + synthetic + group("mixed", [40, 190, 330], splits=["train", "dev", "train"], seed=7)
    source = {r.id: r for r in records}
    src = save_records(records, tmp_path / "ds")
    qa_cfg = QAConfig(per_face=4, kinds={"noface": 1, "pos": 1})
    report = export_dataset(src, tmp_path / "chat", ExportConfig(format="chat"), qa_cfg)
    assert not report.skipped, report.skipped  # fake photos: the detector finds no face in their crops
    samples = _chat(tmp_path / "chat", "train") + _chat(tmp_path / "chat", "dev")
    kinds = Counter()
    for s in samples:
        (meta,) = s["turns"]
        (path,) = s["images"]
        written = Image.open(tmp_path / "chat" / path)
        record = source[s["record_ids"][0]]
        if meta["kind"] == "noface":
            assert path.rsplit("/", 1)[1].startswith("noface-")
            kinds[meta["image"]] += 1
            if meta["image"] == "bg":
                assert written.size == record.image.size
            else:
                box = meta["region"]  # the face-free square qa chose (its ref carried it to the exporter)
                expected = np.asarray(record.image.crop(box), dtype=np.int16)
                assert written.size == (box[2] - box[0], box[3] - box[1])
                assert np.abs(np.asarray(written, dtype=np.int16) - expected).mean() < 6  # the same pixels, up to JPEG
        else:
            assert meta["kind"] == "position" and written.size == record.image.size  # the whole photo
            kinds[f"pos:{record.split}"] += 1
    assert {"bg", "nofacecrop", "pos:train", "pos:dev"} <= set(kinds), kinds


def test_chat_backgrounds_drawn_in_a_worker_are_the_same_files(tmp_path):
    """`workers=1` draws the synthetic `bg:` pictures in a worker process: the same files, byte for byte, and
    the same JSONL as drawing them in the exporter's own process."""
    from facevlm.data.qa import QAConfig
    from facevlm.data.synth import SynthConfig, generate

    synthetic = list(generate(SynthConfig(n_identities=6, per_identity=1, seed=5), workers=1))
    src = save_records(synthetic, tmp_path / "ds")
    qa_cfg = QAConfig(per_face=2, kinds={"noface": 1, "open": 1})
    files = {}
    for workers in (0, 1):
        out = tmp_path / f"chat-{workers}"
        report = export_dataset(src, out, ExportConfig(format="chat", workers=workers), qa_cfg)
        assert report.rows["all"] == 12 and not report.skipped
        written = [p for p in out.rglob("*") if p.suffix in (".jpg", ".jsonl")]  # the report names its folder
        files[workers] = {p.relative_to(out).as_posix(): p.read_bytes() for p in written}
    assert sum(name.startswith("images/all/noface-") for name in files[0]) >= 3
    assert files[0] == files[1]


def test_face_free_crop_with_a_face_in_it_is_dropped(tmp_path, assets_home):
    """A photo whose labels miss a face (here: a box in a corner, Grace Hopper's face unlabelled) must not
    teach "no face visible" on her face: the exporter's detector check drops that sample and counts it."""
    from pathlib import Path

    from facevlm import assets
    from facevlm.data.export.chat import FACE_IN_CROP
    from facevlm.data.qa import QAConfig
    from facevlm.image import open_image

    paths = {Path(s["file"]).name: s["path"] for s in assets.samples("image")}
    photo = open_image(paths["grace_hopper.jpg"])
    record = FaceRecord(id="gh", image=photo, source="t", licence="PD", box=[0, 560, 30, 590], split="train")
    record.set("Smiling", True)
    src = save_records([record], tmp_path / "ds")
    qa_cfg = QAConfig(per_face=2, kinds={"noface": 1})
    report = export_dataset(src, tmp_path / "chat", ExportConfig(format="chat"), qa_cfg)
    assert report.skipped == {FACE_IN_CROP: 2} and report.rows["train"] == 0
    unchecked = export_dataset(src, tmp_path / "raw", ExportConfig(format="chat", check_noface=False), qa_cfg)
    assert unchecked.rows["train"] == 2 and not unchecked.skipped
