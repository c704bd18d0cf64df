"""`facevlm data detect`: whole images in, one record per kept face out, drops counted by reason.

Runs with dlib's HOG detector so it works with any OpenCV; the stage logic does not depend on the backend.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from facevlm.data.detect import DetectSummary, detect_cmd, detect_records
from facevlm.data.store import iter_records, load_records, save_records
from facevlm.schema import FaceRecord
from facevlm.vision.detect import DetectorConfig

HOG = dict(backend="hog", floor=0.0, min_confidence=0.0)


def _records(assets_home) -> list[FaceRecord]:
    from facevlm import assets

    paths = {Path(s["file"]).name: s["path"] for s in assets.samples("image")}
    out = [
        FaceRecord(id=name, image=str(paths[name]), source="samples", licence="test")
        for name in ("multi_face.jpg", "grace_hopper.jpg")
    ]
    out[1].set("expression", "neutral")  # ground truth travels with every face of its image
    out.append(
        FaceRecord(
            id="crop", image=str(paths["obama.jpg"]), source="samples", licence="test", box=[1.0, 2.0, 300.0, 400.0]
        )
    )
    return out


def test_one_record_per_face_with_landmarks_and_counts(assets_home):
    summary = DetectSummary()
    out = list(detect_records(_records(assets_home), DetectorConfig(min_size=0, **HOG), summary))
    multi = [r for r in out if r.image_key == "multi_face.jpg"]
    assert len(multi) >= 4 and [r.id for r in multi] == [f"multi_face.jpg#{k}" for k in range(len(multi))]
    for r in multi:
        assert r.n_faces == len(multi) and len(r.landmarks) == 5 and len(r.box) == 4
        assert r.meta == {"detector": "dlib-hog", "landmark_format": "dlib5", "landmark_origin": "pseudo"}
    hopper = [r for r in out if r.image_key == "grace_hopper.jpg"]
    assert len(hopper) == 1 and hopper[0].get("expression") == "neutral"
    assert out[-1].id == "crop" and out[-1].box == [1.0, 2.0, 300.0, 400.0]  # already had a box
    assert (summary.images, summary.passed_through, summary.kept) == (2, 1, len(multi) + 1)
    assert summary.landmarked == 1 and len(out[-1].landmarks) == 5  # found inside the given box


def test_a_given_box_gets_the_landmarks_a_detected_face_would_have(assets_home):
    detected = list(detect_records(_records(assets_home)[1:2], DetectorConfig(min_size=0, **HOG)))
    assert len(detected) == 1
    hand = FaceRecord(id="hand", image=detected[0].image, source="real", licence="test", box=list(detected[0].box))
    summary = DetectSummary()
    (out,) = detect_records([hand], DetectorConfig(**HOG), summary)
    assert out.box == hand.box and out.landmarks == detected[0].landmarks  # same predictor, same box, same points
    assert out.meta == {"landmark_format": "dlib5", "landmark_origin": "pseudo"}
    assert (summary.images, summary.passed_through, summary.landmarked) == (0, 1, 1)
    assert hand.landmarks == []  # the input record is not modified
    # landmarks off, or already there: the record passes through as it came
    (off,) = detect_records([hand], DetectorConfig(landmarks=False, **HOG))
    assert off is hand
    (kept,) = detect_records([out], DetectorConfig(**HOG), summary)
    assert kept is out and summary.landmarked == 1


def test_size_filter_drops_are_counted(assets_home):
    summary = DetectSummary()
    out = list(detect_records(_records(assets_home)[:2], DetectorConfig(min_size=150, **HOG), summary))
    assert [r.image_key for r in out] == ["grace_hopper.jpg"]  # the group photo's faces are ~100 px
    assert summary.dropped["too_small"] >= 4 and summary.images_without_faces == 1


def test_confidence_drops_are_counted_and_faces_still_counted(assets_home):
    summary = DetectSummary()
    strict = DetectorConfig(backend="hog", floor=0.0, min_confidence=5.0, min_size=0)  # no HOG margin is that high
    assert list(detect_records(_records(assets_home)[:1], strict, summary)) == []
    assert summary.dropped["low_confidence"] >= 4 and summary.images_without_faces == 1


def test_cli_round_trip(assets_home, tmp_path):
    save_records(_records(assets_home)[1:], tmp_path / "in")
    result = CliRunner().invoke(
        detect_cmd,
        [str(tmp_path / "in"), str(tmp_path / "out"), "--backend", "hog", "--min-size", "64", "--min-conf", "0"],
    )
    assert result.exit_code == 0, result.output
    assert "kept 1 faces" in result.output and "passed through (already had a box): 1" in result.output
    records = list(iter_records(load_records(tmp_path / "out")))
    assert [r.id for r in records] == ["grace_hopper.jpg#0", "crop"]
    assert len(records[0].landmarks) == 5 and records[0].box is not None
