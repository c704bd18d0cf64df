"""`facevlm eval export`: a stored dataset in CLIP_benchmark's wds/<name> layout, read back with webdataset
exactly as CLIP_benchmark's `build_wds_dataset` reads it (clip_benchmark/datasets/builder.py)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facevlm.errors import FacevlmError
from facevlm.eval.cli import eval_group
from facevlm.schema import FaceRecord

IMAGE_KEYS = ["webp", "png", "jpg", "jpeg"]


def read_like_clip_benchmark(root: str, split: str) -> tuple[list[tuple], list[str] | None, list[str] | None]:
    """build_wds_dataset, minus HTTP and transforms: nshards.txt is mandatory, dataset_type.txt decides
    retrieval (image, captions) vs classification (image, class index) with classnames + templates."""
    import webdataset as wds

    nshards = int(open(os.path.join(root, split, "nshards.txt")).read())
    dataset_type = open(os.path.join(root, "dataset_type.txt")).read().strip().lower()
    pattern = os.path.join(root, split, "{0..%d}.tar" % (nshards - 1))  # noqa: UP031 (CLIP_benchmark's line)
    dataset = wds.WebDataset(pattern, nodesplitter=lambda src: src, shardshuffle=False).decode(
        wds.autodecode.ImageHandler("pil", extensions=IMAGE_KEYS)
    )
    if dataset_type == "retrieval":
        return list(dataset.to_tuple(IMAGE_KEYS, "txt").map_tuple(None, str.splitlines)), None, None
    items = list(dataset.to_tuple(IMAGE_KEYS, "cls").map_tuple(None, None))

    def lines(name: str) -> list[str]:
        return [line.strip() for line in open(os.path.join(root, name)).read().splitlines()]

    return items, lines("classnames.txt"), lines("zeroshot_classification_templates.txt")


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """7 faces: multi-caption, one caption-less, expression/Smiling labels (one only pseudo)."""
    from facevlm.data.store import save_records

    rng = np.random.default_rng(0)
    records = []
    for i, expr in enumerate(["happy", "sad", "neutral", "happy", "fear", "surprise", "sad"]):
        image = Image.fromarray(rng.integers(0, 256, (60, 50, 3), dtype=np.uint8))
        rec = FaceRecord(
            id=f"t/{i}",
            image=image,
            source="test",
            licence="CC0",
            box=[5, 5, 45, 55],
            split="test" if i < 5 else "train",
            captions=[f"face {i}, first caption.", f"face {i},\n  second caption."] if i != 2 else [],
        )
        rec.set("expression", expr, origin="pseudo" if i == 4 else "gt", prob=0.99)
        rec.set("Smiling", expr == "happy")
        records.append(rec)
    return records, save_records(records, tmp_path_factory.mktemp("bench") / "faces")


def _export(stored, out, *args: str):
    result = CliRunner().invoke(
        eval_group,
        ["export", str(stored), "--out", str(out), "--samples-per-shard", "2", *args],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result


def _pixels(record: FaceRecord) -> np.ndarray:
    from facevlm.data.export import ExportConfig, crop_jpeg

    return np.asarray(Image.open(io.BytesIO(crop_jpeg(record, ExportConfig()))))


def test_retrieval_layout(faces, tmp_path):
    records, stored = faces
    out = tmp_path / "wds_faces"
    result = _export(stored, out)
    assert "skipped 1: records without a caption" in result.output
    assert sorted(p.name for p in (out / "test").iterdir()) == ["0.tar", "1.tar", "nshards.txt"]
    assert (out / "test" / "nshards.txt").read_text() == "2\n"
    assert (out / "dataset_type.txt").read_text() == "retrieval\n"
    assert not (out / "classnames.txt").exists()
    items, classes, templates = read_like_clip_benchmark(str(out), "test")
    expected = [r for r in records if r.split == "test" and r.captions]
    assert classes is None and len(items) == len(expected) == 4
    for (image, captions), record in zip(items, expected):
        i = record.id.split("/")[1]
        assert captions == [f"face {i}, first caption.", f"face {i}, second caption."]  # newline flattened
        assert np.array_equal(np.asarray(image), _pixels(record))  # the crop every other export writes
    train, _, _ = read_like_clip_benchmark(str(out), "train")
    assert len(train) == 2 and (out / "train" / "nshards.txt").read_text() == "1\n"


def test_expression_classification_layout(faces, tmp_path):
    from facevlm.clip.prompts import templated, value_phrases
    from facevlm.schema import VOCABULARY

    records, stored = faces
    out = tmp_path / "wds_expression"
    result = _export(stored, out, "--task", "expression", "--split", "test")
    assert "skipped 1: records without a ground-truth expression label" in result.output  # pseudo-label only
    assert (out / "dataset_type.txt").read_text() == "classification\n" and not (out / "train").exists()
    items, classes, templates = read_like_clip_benchmark(str(out), "test")
    values = list(VOCABULARY["expression"].values)
    expected = [r for r in records if r.split == "test" and r.attrs()["expression"].origin == "gt"]
    assert [label for _, label in items] == [values.index(r.get("expression")) for r in expected] == [1, 2, 0, 1]
    phrases = value_phrases("expression")
    assert classes == [phrases[v][0] for v in values]
    for name in classes:  # CLIP_benchmark's text side = FaceCLIP's prompt ensemble of that phrasing
        assert [t.format(c=name) for t in templates] == templated((name,))
    assert np.array_equal(np.asarray(items[1][0]), _pixels(expected[1]))


def test_binary_attribute_classification_layout(faces, tmp_path):
    from facevlm.clip.prompts import binary_sides

    records, stored = faces
    out = tmp_path / "wds_smiling"
    _export(stored, out, "--task", "Smiling")
    items, classes, _ = read_like_clip_benchmark(str(out), "test")
    present, absent = binary_sides("Smiling")
    assert classes == [absent[0], present[0]]  # class 0 = not smiling, 1 = smiling
    assert [label for _, label in items] == [int(r.get("Smiling") == "true") for r in records if r.split == "test"]
    assert [label for _, label in items] == [1, 0, 0, 1, 0]


def test_bad_tasks_are_clear_errors(faces, tmp_path):
    from facevlm.eval.clip_benchmark import BenchmarkExportConfig, export_clip_benchmark

    records, _ = faces
    with pytest.raises(FacevlmError, match="not 'age'"):
        BenchmarkExportConfig(task="age")
    with pytest.raises(FacevlmError, match="sensitive; pass --sensitive"):
        BenchmarkExportConfig(task="gender_presentation")
    with pytest.raises(FacevlmError, match="no record to write"):
        export_clip_benchmark(records, tmp_path / "x", BenchmarkExportConfig(task="Eyeglasses"))
