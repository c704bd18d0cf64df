"""`facevlm bench detect --real`: one-to-one matching, the picture-level bootstrap and the budgeted pick."""

from __future__ import annotations

import numpy as np
import pytest

from facevlm.data.detect_bench import Row, matched, pick, recall_ci, setting_name
from facevlm.vision.detect import Detection


def test_each_detection_matches_at_most_one_face_best_score_first():
    faces = [[0, 0, 100, 100], [10, 0, 110, 100], [300, 300, 340, 340]]
    dets = [Detection((5, 0, 105, 100), 0.6), Detection((0, 0, 100, 100), 0.9), Detection((500, 0, 510, 10), 0.8)]
    hit, unmatched = matched(faces, dets)
    # 0.9 takes the first face; 0.6 overlaps both (IoU 0.9) and takes the free one; the 10 px box is
    # smaller than a labelled face can be, so it is not counted as unmatched
    assert hit == [True, True, False] and unmatched == 0
    hit, unmatched = matched(faces[:1], dets[:2] + [Detection((200, 200, 260, 260), 0.7)])
    assert hit == [True] and unmatched == 2
    assert matched([], []) == ([], 0)


def test_recall_interval_resamples_pictures():
    hits, totals = np.array([10, 0, 5, 5]), np.array([10, 10, 5, 5])
    recall, low, high = recall_ci(hits, totals, n_boot=500)
    assert recall == pytest.approx(20 / 30) and low < recall < high <= 1.0
    assert recall_ci(np.array([3, 2]), np.array([3, 2]), n_boot=100) == (1.0, 1.0, 1.0)
    assert np.isnan(recall_ci(np.array([0]), np.array([0]))[0])  # no labelled faces: no figure


def _row(setting: str, threshold: float, hits: int, unmatched: int, ms: float) -> Row:
    return Row(setting, threshold, np.array([hits]), np.array([0]), unmatched, ms)


def test_pick_is_the_best_recall_inside_the_budget():
    current = setting_name("ssd", {"input_size": 300})
    rows = [
        _row(current, 0.5, 146, 1, 50.0),
        _row(current, 0.3, 150, 30, 50.0),  # more faces, but too many unmatched detections
        _row("ssd res10, input 400", 0.5, 154, 2, 80.0),
        _row("ssd res10, input 400", 0.7, 154, 0, 80.0),  # same recall, fewer unmatched: preferred
        _row("dlib hog, upsample 2", 0.0, 160, 1, 900.0),  # too slow
    ]
    lines = pick(rows, n_pictures=81)
    assert "pick: ssd res10, input 400 at threshold 0.7 (recall 154 faces, current default 146)" in lines
    assert "was not in the grid" in pick(rows[2:], 81)[-1]
