"""`facevlm demo` on the real sample photos, and the contact-sheet drawing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from facevlm.demo import COLUMNS, TILE, FaceRow, contact_sheet, demo
from facevlm.schema import EXPRESSIONS


def test_contact_sheet_draws_box_and_label_where_the_face_is(tmp_path):
    image = np.full((360, 480, 3), 90, np.uint8)  # exactly one tile: no scaling
    face = FaceRow("x.jpg", 0, (100.0, 120.0, 220.0, 260.0), 0.99, "happy", 0.87)
    sheet = np.asarray(Image.open(contact_sheet([("x.jpg", image)], [[face]], tmp_path / "s.png")))
    assert sheet.shape[1] == COLUMNS * TILE[0]
    assert tuple(sheet[190, 100]) == (0, 255, 0) and tuple(sheet[260, 160]) == (0, 255, 0)  # box edges
    label = sheet[90:118, 100:220]
    assert (label == (255, 255, 0)).all(-1).any()  # yellow text on a black plate just above the box
    assert tuple(sheet[190, 160]) == (90, 90, 90)  # inside the box stays the photo


def test_demo_on_the_samples(assets_home, tmp_path):
    from facevlm import assets

    files = [Path(s["file"]).name for s in assets.samples()[:6]]
    result = CliRunner().invoke(demo, ["--out", str(tmp_path), "--frames", "1", "--limit", "6"])
    assert result.exit_code == 0, result.output
    assert "contact sheet:" in result.output and files[0] in result.output
    rows = [line for line in result.output.splitlines() if any(e in line for e in EXPRESSIONS)]
    assert len(rows) >= 4  # nearly every sample photo shows at least one face
    sheet = Image.open(tmp_path / "contact_sheet.png")
    assert sheet.width == COLUMNS * TILE[0] and sheet.height >= 2 * TILE[1]
