"""`facevlm index` identity commands on the real sample photos: verify, identify, cluster, name-cluster,
reembed, same_person search; user mistakes are one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fakes import write_pattern_images

from facevlm.cli import cli
from facevlm.errors import FacevlmError


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _fails(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert isinstance(result.exception, FacevlmError), result.output
    message = str(result.exception)
    assert "\n" not in message
    return message


@pytest.mark.assets
def test_identity_commands(tmp_path, tiny_model, assets_home):
    samples = assets_home / "assets" / "samples"
    obama, obama2, obama3, biden = (str(samples / f) for f in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"))
    gallery = str(tmp_path / "g")
    assert "3 faces added" in _run("index", "add", gallery, obama, obama2, biden, "--no-label", "--model", tiny_model)

    assert _run("index", "verify", obama, obama2).startswith("same person: distance 0.3")
    different = json.loads(_run("index", "verify", obama, "--face", gallery, "3", "--json"))
    assert different["same"] is False and different["threshold"] == 0.6 and different["threshold_source"] == "model"
    strict = _run("index", "verify", "--face", gallery, "1", "--face", gallery, "2", "--threshold", "0.1")
    assert strict.startswith("different people") and "(request;" in strict

    hits = json.loads(_run("index", "search", gallery, "--image", obama3, "--match", "same_person", "--json"))
    assert sorted(h["face_id"] for h in hits) == [1, 2] and all(h["distance"] < 0.6 for h in hits)

    assert _run("index", "identify", gallery, obama3).startswith("unknown (no labelled faces")
    clusters = json.loads(_run("index", "cluster", gallery, "--json"))
    assert sorted(c["face_ids"] for c in clusters["clusters"]) == [[1, 2], [3]]
    pair = next(c for c in clusters["clusters"] if c["size"] == 2)
    assert all(p.endswith(".jpg") for p in pair["thumbnails"])
    assert "2 faces are now 'Barack Obama'" in _run("index", "name-cluster", gallery, str(pair["id"]), "Barack Obama")
    assert _run("index", "identify", gallery, obama3).startswith("Barack Obama (distance 0.3")
    assert _run("index", "identify", gallery, "--face-id", "3").startswith("unknown (nearest labelled face at 0.8")
    assert "3 of 3 faces have dlib-resnet-v1 identity vectors" in _run("index", "reembed", gallery)

    assert "5 faces found" in _fails("index", "verify", str(samples / "multi_face.jpg"), obama)
    (blank,) = write_pattern_images(tmp_path / "blank", 1)
    assert "no face found" in _fails("index", "verify", str(blank), obama)
    assert "no face 99 in gallery" in _fails("index", "verify", obama, "--face", gallery, "99")
    assert "exactly two faces" in _fails("index", "verify", obama)
    assert "not one of dlib-resnet-v1" in _fails("index", "search", gallery, "x", "--identity-model", "arcface")
    assert "no cluster 99" in _fails("index", "name-cluster", gallery, "99", "Someone")
    assert "add --replace" in _fails("index", "reembed", gallery, "--identity-model", f"{__name__}:Toy")


class Toy:
    """Another identity model (what a plug-in looks like), for the mismatch message."""

    dim, threshold, threshold_source = 4, 0.5, "test"

    def __init__(self, weights=None):
        pass
