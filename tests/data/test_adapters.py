"""Every adapter on a fixture in its dataset's real distributed format, good and bad input."""

from __future__ import annotations

from pathlib import Path

import face_fixtures as fx
import pytest

from facevlm.data.adapters import REGISTRY, open_source
from facevlm.errors import DataError, FacevlmError


def load(name: str, root: Path | None, split: str, **options):
    reader = open_source(name, root, split, **options)
    return list(reader), reader.summary


def test_registry_imports_every_adapter():
    from facevlm.data.adapters import get_adapter

    for name in REGISTRY:
        cls = get_adapter(name)
        assert cls.name == name and cls.licence and cls.splits


def test_celeba_official_partition_attributes_identity_landmarks(tmp_path):
    root = fx.celeba(tmp_path, n=9)
    train, summary = load("celeba", root, "train")
    assert [r.id for r in train] == [f"celeba/{i:06d}.jpg" for i in range(1, 7)]
    assert summary.loaded == 6 and summary.n_skipped == 0
    val, _ = load("celeba", root, "val")
    test, _ = load("celeba", root, "test")
    assert len(val) == 2 and len(test) == 1
    rec = train[0]
    assert rec.source == "celeba" and "non-commercial" in rec.licence and rec.split == "train"
    assert len(rec.attributes) == 40 and {a.origin for a in rec.attributes} == {"gt"}
    # values follow the file: re-read line 3 and compare every column
    line = (root / "list_attr_celeba.txt").read_text().splitlines()[2].split()
    assert [rec.get(n) for n in fx.CELEBA_ATTRIBUTES] == ["true" if v == "1" else "false" for v in line[1:]]
    assert rec.identity == "celeba:100"
    assert rec.landmarks[0] == [69.0, 109.0] and rec.landmarks[4] == [108.0, 154.0]
    assert rec.box is None  # aligned images are crops; the bbox file describes the in-the-wild images


def test_celeba_wild_variant_uses_bbox(tmp_path):
    root = fx.celeba(tmp_path, n=4)
    (root / "img_align_celeba").rename(root / "img_celeba")
    recs, _ = load("celeba", root, "train", variant="wild")
    assert recs[0].box == [95.0, 71.0, 95.0 + 226, 71.0 + 313]


def test_fairface_bins_and_labels(tmp_path):
    root = fx.fairface(tmp_path)
    train, summary = load("fairface", root, "train")
    assert [r.get("age_group") for r in train] == ["50-59", "70+", "3-9"]
    assert [r.get("gender_presentation") for r in train] == ["masculine", "feminine", "feminine"]
    assert [r.get("race") for r in train] == ["East Asian", "Indian", "Latino_Hispanic"]
    assert train[0].meta["service_test"] is True and train[0].id == "fairface/train/1.jpg"
    val, _ = load("fairface", root, "val")
    assert len(val) == 1 and val[0].split == "val"
    with pytest.raises(FacevlmError, match="no split 'test'"):
        open_source("fairface", root, "test")


def test_utkface_file_names(tmp_path):
    recs, summary = load("utkface", fx.utkface(tmp_path), "all")
    by_age = {int(float(r.get("age"))): r for r in recs}
    assert sorted(by_age) == [1, 25, 45, 80]
    assert by_age[25].get("gender_presentation") == "masculine" and by_age[25].get("race") is None
    assert by_age[25].meta["utkface_race"] == "Asian"  # no faithful FairFace category: kept in meta only
    assert by_age[1].get("race") == "White" and by_age[1].get("age_group") == "0-2"
    assert by_age[45].get("race") == "Indian" and by_age[80].get("age_group") == "70+"


def test_fer2013_usage_splits_and_pixels(tmp_path):
    root = fx.fer2013(tmp_path)
    train, _ = load("fer2013", root, "train")
    val, _ = load("fer2013", root, "val")
    test, _ = load("fer2013", root, "test")
    assert (len(train), len(val), len(test)) == (3, 1, 2)
    assert [r.get("expression") for r in train] == ["anger", "disgust", "fear"]
    from facevlm.image import open_image

    pixels = (root / "fer2013.csv").read_text().splitlines()[1].split(",")[1].split()
    img = open_image(train[0].image).convert("L")
    import numpy as np

    assert img.size == (48, 48) and np.asarray(img).ravel()[:5].tolist() == [int(p) for p in pixels[:5]]


def test_rafdb_basic(tmp_path):
    root = fx.rafdb(tmp_path)
    train, _ = load("rafdb", root, "train")
    assert [r.get("expression") for r in train] == ["sad", "happy", "neutral"]
    assert train[0].get("gender_presentation") == "masculine" and train[1].get("gender_presentation") == "feminine"
    assert train[2].get("gender_presentation") is None  # 2 = unsure
    assert train[0].meta["rafdb_race"] == "Asian" and train[0].landmarks == []
    test, _ = load("rafdb", root, "test")
    assert [r.get("expression") for r in test] == ["surprise", "anger"]
    original, _ = load("rafdb", root, "train", images="original")
    assert original[0].landmarks[0] == [100.0, 120.0]


@pytest.mark.parametrize("val_header", [True, False])
def test_affectnet_csv_box_landmarks_and_skips(tmp_path, val_header):
    root = fx.affectnet(tmp_path, val_header=val_header)
    train, summary = load("affectnet", root, "train")
    assert [r.get("expression") for r in train] == ["happy", "neutral", "anger"]
    assert summary.skipped == {"contempt (not in our vocabulary)": 1, "non-face": 1}
    assert train[0].box == [20.0, 24.0, 200.0, 214.0] and len(train[0].landmarks) == 5
    assert train[0].meta == {"valence": 0.785714, "arousal": -0.055556}
    val, _ = load("affectnet", root, "val")
    assert [r.get("expression") for r in val] == ["surprise"]


def test_lfw_views_and_pairs(tmp_path):
    from facevlm.data.adapters.lfw import read_pairs

    root = fx.lfw(tmp_path)
    train, _ = load("lfw", root, "train")
    assert [r.id for r in train] == [
        "lfw/Abdullah_Gul/Abdullah_Gul_0001.jpg",
        "lfw/Abdullah_Gul/Abdullah_Gul_0002.jpg",
        "lfw/Abdullah_Gul/Abdullah_Gul_0003.jpg",
        "lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg",
    ]
    assert train[0].identity == "lfw:Abdullah_Gul"
    test, _ = load("lfw", root, "test")
    assert {r.identity for r in test} == {"lfw:Ana_Palacio", "lfw:Zico"}
    every, _ = load("lfw", root, "all")
    assert [r.meta["fold"] for r in every] == [0] * 4 + [1] * 4
    pairs = read_pairs(root / "pairs.txt")
    assert [(p.same, p.fold) for p in pairs] == [(True, 0), (False, 0), (True, 1), (False, 1)]
    assert pairs[1].name2 == "Zico" and pairs[1].index2 == 2
    dev = read_pairs(root / "pairsDevTrain.txt")
    assert len(dev) == 2 and dev[0].same and not dev[1].same


def test_facecaption_parquet(tmp_path):
    recs, summary = load("facecaption15m", fx.facecaption(tmp_path), "train")
    assert len(recs) == 4 and summary.n_skipped == 0
    assert recs[0].box == [10.0, 12.0, 90.0, 110.0]
    assert recs[0].captions == ["The woman has long brown hair and is smiling."]
    assert recs[0].meta["laion_caption"] == "photo of a woman" and recs[0].id == "facecaption15m/000000001"


def test_imagefolder_identity_and_expression(tmp_path):
    root = fx.imagefolder(tmp_path)
    recs, _ = load("imagefolder", root, "train")
    assert sorted({r.identity for r in recs}) == ["Angry", "happy", "neutral"]
    recs, _ = load("imagefolder", root, "train", label="expression")
    assert sorted({r.get("expression") for r in recs}) == ["anger", "happy", "neutral"]
    test, _ = load("imagefolder", root, "test", label="expression")
    assert [r.get("expression") for r in test] == ["sad", "sad"]


def test_jsonl_fields(tmp_path):
    path = fx.jsonl(tmp_path)
    every, _ = load("jsonl", path, "all")
    assert len(every) == 3
    train, _ = load("jsonl", path, "train")
    assert len(train) == 2  # the object without a split belongs to whichever split is read
    a = train[0]
    assert a.identity == "p1" and a.box == [4.0, 4.0, 40.0, 44.0] and a.get("Eyeglasses") == "true"
    b = every[1]
    assert b.attrs()["age"].origin == "pseudo" and b.attrs()["age"].prob == pytest.approx(0.7)
    assert b.captions == ["Someone."]


def test_samples_photos_and_video_frames(tmp_path):
    from facevlm.data.adapters.samples import apply_sample_labels

    recs, summary = load("samples", fx.samples(tmp_path), "all", frames_per_video=4)
    assert [r.meta["kind"] for r in recs] == ["image", "image", "video", "video", "video", "video"]
    assert [r.meta.get("frame") for r in recs[2:]] == [0, 4, 7, 11]
    assert {r.image_key for r in recs[2:]} == {"samples/clip.mp4"} and recs[0].licence == "public domain"
    one = apply_sample_labels(recs[0])
    assert one.identity == "samples:grace" and one.get("expression") == "happy"
    recs[0].identity, recs[0].attributes, recs[0].n_faces = None, [], 2
    assert apply_sample_labels(recs[0]).identity is None  # labels are ambiguous on a group photo


def test_bad_options_and_roots(tmp_path):
    with pytest.raises(FacevlmError, match="unknown option"):
        open_source("celeba", tmp_path, "train", colour="red")
    with pytest.raises(FacevlmError, match="no such file or directory"):
        open_source("celeba", tmp_path / "nope", "train")
    with pytest.raises(DataError, match="image folder"):
        list(open_source("celeba", tmp_path, "train"))
    with pytest.raises(FacevlmError, match="unknown source"):
        open_source("imagenet", tmp_path)
