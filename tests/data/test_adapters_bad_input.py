"""Bad input on the real formats: one-line messages naming file and line, the rest loads, skips counted."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import face_fixtures as fx
import pytest
from click.testing import CliRunner

from facevlm.data.adapters import open_source
from facevlm.errors import DataError


def run(name: str, root: Path, split: str, **options):
    reader = open_source(name, root, split, **options)
    return list(reader), reader.summary


def test_celeba_short_line_and_corrupt_image(tmp_path, caplog):
    root = fx.celeba(tmp_path, n=9, bad=True)
    with caplog.at_level(logging.WARNING, logger="facevlm.data.adapters"):
        recs, s = run("celeba", root, "train")
    assert len(recs) == 4 and s.loaded == 4
    assert s.skipped == {"wrong number of attribute columns": 1, "corrupt image": 1}
    assert any(m.startswith(f"{root / 'list_attr_celeba.txt'}:4: wrong number") for m in s.examples)
    assert any(":5: corrupt image" in m for m in s.examples)
    assert all("\n" not in r.message for r in caplog.records) and len(caplog.records) == 2


def test_celeba_edited_header_is_an_error(tmp_path):
    root = fx.celeba(tmp_path, n=3)
    path = root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace("Arched_Eyebrows ", "")
    path.write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"list_attr_celeba.txt:2: header"):
        run("celeba", root, "train")


# adapter, its label file, the bad rows of its fixture: line -> the reason it is skipped for (3 rows load)
BAD_ROWS = [
    ("fairface", "fairface_label_train.csv", {5: "malformed line", 6: "corrupt image"}),
    ("fer2013", "fer2013.csv", {3: "bad pixel string", 4: "malformed line"}),
    ("rafdb", "basic/EmoLabel/list_patition_label.txt", {2: "malformed line", 7: "corrupt image"}),
    ("lfw", "peopleDevTrain.txt", {2: "corrupt image", 4: "malformed line"}),
]


@pytest.mark.parametrize(("name", "labels", "bad"), BAD_ROWS, ids=[row[0] for row in BAD_ROWS])
def test_bad_rows_are_skipped_counted_and_named(tmp_path, name, labels, bad):
    """A malformed row or a corrupt image is skipped and counted by reason, the rest loads, and each
    message starts with the file and line."""
    root = getattr(fx, name)(tmp_path, bad=True)
    recs, s = run(name, root, "train")
    assert len(recs) == 3 and s.skipped == Counter(bad.values())
    for line, reason in bad.items():
        said = f"{root / labels}:{line}: {reason}"
        assert any(m.startswith(said) for m in s.examples), (said, s.examples)


def test_fairface_missing_column_names_file_and_line(tmp_path):
    root = fx.fairface(tmp_path)
    path = root / "fairface_label_train.csv"
    path.write_text(path.read_text().replace("file,age,gender,race", "file,age,sex,race"))
    with pytest.raises(DataError, match=r"fairface_label_train.csv:1: missing column\(s\) gender"):
        run("fairface", root, "train")


def test_utkface_malformed_name_and_corrupt_image(tmp_path):
    recs, s = run("utkface", fx.utkface(tmp_path, bad=True), "all")
    assert len(recs) == 4 and s.skipped == {"malformed file name": 1, "corrupt image": 1}
    assert any(m.startswith("UTKFace/39_1_20170116174525125.jpg.chip.jpg: malformed") for m in s.examples)


def test_affectnet_truncated_row_and_corrupt_image(tmp_path):
    recs, s = run("affectnet", fx.affectnet(tmp_path, bad=True), "train")
    assert [r.get("expression") for r in recs] == ["happy", "neutral"]
    assert s.skipped["malformed line"] == 1 and s.skipped["corrupt image"] == 1
    assert any("training.csv:7: malformed line" in m for m in s.examples)


def test_lfw_pairs_malformed_is_an_error(tmp_path):
    from facevlm.data.adapters.lfw import read_pairs

    root = fx.lfw(tmp_path)
    (root / "pairs.txt").write_text("2\t1\nAbdullah_Gul\t1\n")
    with pytest.raises(DataError, match=r"pairs.txt:2: malformed matched pair"):
        read_pairs(root / "pairs.txt")


def test_facecaption_bad_box_missing_and_corrupt_image(tmp_path):
    recs, s = run("facecaption15m", fx.facecaption(tmp_path, bad=True), "train")
    assert len(recs) == 2
    assert s.skipped == {"corrupt image": 1, "bad box": 1}
    assert any("FaceCaption-v2.parquet:row 3: bad box" in m for m in s.examples)


def test_facecaption_missing_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"_id": ["1"], "url": ["u"]}), tmp_path / "x.parquet")
    with pytest.raises(DataError, match=r"x.parquet: missing column\(s\) box, face_caption"):
        run("facecaption15m", tmp_path, "train")


def test_imagefolder_and_jsonl_bad_items(tmp_path):
    recs, s = run("imagefolder", fx.imagefolder(tmp_path / "f", bad=True), "train", label="expression")
    assert len(recs) == 6 and s.skipped == {"corrupt image": 1, "unknown label value": 1}
    recs, s = run("jsonl", fx.jsonl(tmp_path / "j", bad=True), "all")
    assert len(recs) == 3 and s.skipped == {"malformed line": 1, "bad value": 1}
    assert any("faces.jsonl:2: malformed line" in m for m in s.examples)
    assert any("faces.jsonl:5: bad value" in m for m in s.examples)


def test_strict_mode_stops_at_first_bad_item(tmp_path):
    with pytest.raises(DataError, match="fairface_label_train.csv:5: malformed line"):
        run("fairface", fx.fairface(tmp_path, bad=True), "train", strict=True)


def test_import_cli_prints_summary_and_saves(tmp_path, monkeypatch):
    from facevlm.cli import cli
    from facevlm.data.store import load_records

    monkeypatch.setenv("FACEVLM_HOME", str(tmp_path / "home"))
    root = fx.fairface(tmp_path / "ff", bad=True)
    result = CliRunner().invoke(cli, ["data", "import", "fairface", str(root), "--split", "train", "--out", "ff"])
    assert result.exit_code == 0, result.output
    assert "loaded 3, skipped 2" in result.output and "malformed line" in result.output
    ds = load_records("ff")
    assert len(ds) == 3 and set(ds["split"]) == {"train"}
    saved = json.loads((tmp_path / "home" / "datasets" / "ff" / "import_summary.json").read_text())
    assert saved["skipped"] == {"malformed line": 1, "corrupt image": 1}
    bad = CliRunner().invoke(cli, ["data", "import", "fairface", str(root), "--split", "test", "--out", "x"])
    assert bad.exit_code != 0
