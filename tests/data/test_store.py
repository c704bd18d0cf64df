"""Storage round trips, face crops, dataset paths and `facevlm data info`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from facevlm.data.store import dataset_path, face_crop, iter_records, load_records, save_records, summarize
from facevlm.errors import FacevlmError
from facevlm.image import open_image
from facevlm.schema import FaceRecord


def _img(w: int = 100, h: int = 80, colour=(200, 30, 30)):
    from PIL import Image

    img = Image.new("RGB", (w, h), (0, 0, 0))
    img.paste(Image.new("RGB", (40, 40), colour), (30, 20))
    return img


def _record(i: int, **kw) -> FaceRecord:
    r = FaceRecord(id=f"t/{i}", image=_img(), source="test", licence="CC0", **kw)
    r.set("Eyeglasses", i % 2)
    r.set("expression", "happy", origin="pseudo", prob=0.75, model="m")
    return r


def test_round_trip_keeps_every_field(tmp_path):
    src = _record(
        1,
        box=[30, 20, 70, 60],
        landmarks=[[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]],
        identity="p",
        captions=["a", "b"],
        split="val",
        meta={"k": [1, 2]},
        det_score=0.5,
        n_faces=2,
        image_key="photo1",
    )
    path = save_records([src, _record(2)], tmp_path / "ds")
    ds = load_records(path)
    assert ds.features["image"].__class__.__name__ == "Image" and len(ds) == 2
    back = list(iter_records(ds))
    a = back[0]
    assert (a.id, a.box, a.identity, a.captions, a.split, a.meta, a.image_key, a.n_faces) == (
        "t/1",
        [30.0, 20.0, 70.0, 60.0],
        "p",
        ["a", "b"],
        "val",
        {"k": [1, 2]},
        "photo1",
        2,
    )
    assert a.landmarks[4] == [9.0, 10.0] and a.det_score == pytest.approx(0.5)
    assert a.attrs()["expression"].origin == "pseudo" and a.attrs()["expression"].prob == pytest.approx(0.75)
    assert back[1].box is None and back[1].image_key == "t/2"
    assert a.image.size == (100, 80) and a.image.getpixel((50, 40)) == (200, 30, 30)


def test_original_bytes_are_stored_unchanged(tmp_path):
    import io

    buf = io.BytesIO()
    _img().save(buf, format="JPEG", quality=77)
    data = buf.getvalue()
    record = FaceRecord(id="j", image={"bytes": data, "path": "x.jpg"}, source="s", licence="l")
    path = save_records([record], tmp_path / "j")
    from datasets import Image, load_from_disk

    raw = load_from_disk(str(path)).cast_column("image", Image(decode=False))[0]["image"]
    assert raw["bytes"] == data


def test_overwrite_from_itself_and_empty(tmp_path):
    path = save_records([_record(i) for i in range(3)], tmp_path / "ds")
    path = save_records((r for r in iter_records(load_records(path)) if r.id != "t/1"), path)
    assert load_records(path)["id"] == ["t/0", "t/2"]
    assert len(load_records(save_records([], tmp_path / "empty"))) == 0


def test_records_come_back_upright_and_resave_keeps_the_exif_bytes(tmp_path):
    import io

    from datasets import Image, load_from_disk
    from PIL import Image as PILImage

    exif = PILImage.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    buf = io.BytesIO()
    _img().save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    data = buf.getvalue()
    record = FaceRecord(id="r", image={"bytes": data, "path": None}, source="s", licence="l")
    first = save_records([record], tmp_path / "a")
    (record,) = iter_records(load_records(first))
    assert record.image.mode == "RGB" and record.image.size == (80, 100)  # upright, as open_image gives it
    assert record.image.tobytes() == open_image(data).tobytes()
    second = save_records([record], tmp_path / "b")  # unchanged pixels: the original bytes, EXIF tag and all
    assert load_from_disk(str(second)).cast_column("image", Image(decode=False))[0]["image"]["bytes"] == data


def test_face_crop_margin_square_and_whole_image():
    r = _record(0, box=[30, 20, 70, 60])
    assert face_crop(r, margin=0.0).size == (40, 40)
    assert face_crop(r, margin=0.0).getpixel((20, 20)) == (200, 30, 30)
    assert face_crop(r, margin=0.25).size == (60, 60)
    tall = _record(0, box=[30, 20, 50, 60])  # 20 x 40 box: squared before resizing, never stretched
    crop = face_crop(tall, size=32, margin=0.0)
    assert crop.size == (32, 32) and crop.getpixel((2, 16)) == (0, 0, 0) and crop.getpixel((16, 16)) == (200, 30, 30)
    whole = _record(0)
    assert face_crop(whole).size == (100, 80) and face_crop(whole, size=50).size == (50, 50)


def test_open_image_forms(tmp_path):
    path = tmp_path / "a.png"
    _img().save(path)
    for form in (path, str(path), path.read_bytes(), {"bytes": path.read_bytes(), "path": None}, _img()):
        assert open_image(form).size == (100, 80)


def test_dataset_path_and_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEVLM_HOME", str(tmp_path))
    assert dataset_path("celeba") == tmp_path / "datasets" / "celeba"
    assert dataset_path("./x") == __import__("pathlib").Path("./x")
    assert dataset_path(tmp_path / "y") == tmp_path / "y"
    with pytest.raises(FacevlmError, match="no stored face dataset"):
        load_records("nothing")


def test_info_cmd(tmp_path, monkeypatch):
    from facevlm.cli import cli

    monkeypatch.setenv("FACEVLM_HOME", str(tmp_path))
    save_records(
        [_record(i, identity=f"p{i % 2}", split="train", captions=["c"]) for i in range(4)],
        tmp_path / "datasets" / "mini",
    )
    result = CliRunner().invoke(cli, ["data", "info", "mini"])
    assert result.exit_code == 0, result.output
    assert "4 faces, 2 identities, 0 with a box, 4 captions" in result.output
    assert "Eyeglasses" in result.output and "happy (pseudo) 4" in result.output
    as_json = json.loads(CliRunner().invoke(cli, ["data", "info", "mini", "--json"]).output)
    assert as_json["attributes"]["Eyeglasses"] == {"false (gt)": 2, "true (gt)": 2}
    assert summarize(load_records("mini"))["splits"] == {"train": 4}


def test_resave_keeps_original_bytes_unless_pixels_change(tmp_path):
    import io

    from datasets import Image, load_from_disk

    buf = io.BytesIO()
    _img().save(buf, format="JPEG", quality=77)
    data = buf.getvalue()
    first = save_records(
        [FaceRecord(id=f"j{i}", image={"bytes": data, "path": None}, source="s", licence="l") for i in range(2)],
        tmp_path / "a",
    )
    recs = list(iter_records(load_records(first)))
    recs[1].image.putpixel((0, 0), (255, 255, 255))  # a stage that edits pixels must not get the old bytes
    second = save_records(recs, tmp_path / "b")
    raw = load_from_disk(str(second)).cast_column("image", Image(decode=False))
    assert raw[0]["image"]["bytes"] == data
    assert raw[1]["image"]["bytes"] != data
    assert min(list(iter_records(load_records(second)))[1].image.getpixel((0, 0))) > 200  # re-encoded (lossy JPEG)
