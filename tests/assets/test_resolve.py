"""resolve() / path() / samples(): the one entry point every loader uses for model arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import facevlm.assets as assets
from facevlm.assets import manifest, registry
from facevlm.assets.convert import labels_from_filename, torchvision_to_timm_mobilenetv2
from facevlm.errors import AssetError


def test_resolve_known_name(assets_home):
    got = assets.resolve("minilm-l6")
    assert got == assets_home / "assets" / "minilm-l6"
    assert (Path(got) / "model.safetensors").is_file()
    assert assets.path("minilm-l6") == got


def test_resolve_local_path_passes_through(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert assets.resolve(str(folder)) == folder
    assert assets.resolve(folder) == folder


def test_resolve_hub_id_is_returned_unchanged():
    assert assets.resolve("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert assets.resolve("gpt2") == "gpt2"


def test_local_path_takes_names_and_existing_paths_but_no_hub_id(assets_home, tmp_path):
    assert assets.local_path("minilm-l6") == assets.path("minilm-l6")
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"x")
    assert assets.local_path(str(weights)) == weights
    with pytest.raises(AssetError, match=r"gpt2: neither a known asset \(.*minilm-l6.*\) nor an existing file"):
        assets.local_path("gpt2")
    with pytest.raises(AssetError, match="no such file or directory"):
        assets.local_path(tmp_path / "missing")


def test_resolve_missing_local_path_is_an_error(tmp_path):
    with pytest.raises(AssetError, match="no-such-dir: no such file or directory"):
        assets.resolve(str(tmp_path / "no-such-dir"))
    with pytest.raises(AssetError, match="no such file or directory"):
        assets.resolve("./relative/not/there")


def test_resolve_unfetched_asset_says_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEVLM_HOME", str(tmp_path))
    with pytest.raises(AssetError, match=r"asset minilm-l6 is missing; run `facevlm assets fetch minilm-l6`"):
        assets.resolve("minilm-l6")
    with pytest.raises(AssetError, match="unknown asset 'minilm'"):
        assets.path("minilm")
    with pytest.raises(AssetError, match="no assets fetched yet"):
        assets.verify()


def test_damaged_manifest_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEVLM_HOME", str(tmp_path))
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "assets.json").write_text("{not json")
    with pytest.raises(AssetError, match=r"assets/assets.json: unreadable asset manifest"):
        assets.resolve("samples")


def test_samples_records(assets_home):
    records = assets.samples()
    raw = json.loads((assets_home / "assets" / "samples" / "samples.json").read_text())
    assert len(records) == len(raw) >= 18
    for record in records:
        assert record["path"].is_file()
        assert record["kind"] in ("image", "video")
        assert record["licence"] and record["source_package"].startswith(("pypi:", "npm:"))
    by_file = {r["file"]: r for r in records}
    assert by_file["obama2.jpg"]["labels"] == {"identity": "Barack Obama"}
    assert by_file["astronaut.png"]["labels"] == {"identity": "Eileen Collins"}
    assert by_file["45-m7-di-ph.jpg"]["labels"] == {"expression": "disgust"}
    assert {r["file"] for r in assets.samples("video")} == {"single_face.mp4", "WolfgangLanger_Pexels.mp4"}
    # every sample file is recorded in the manifest with its pinned sha256
    entry = manifest.load()["samples"]
    pinned = {m.dest: m.sha256 for m in registry.ASSETS["samples"].members}
    for f in entry.files:
        if f.path in pinned:
            assert f.sha256 == pinned[f.path]


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("obama_partial_face2.jpg", {"identity": "Barack Obama"}),
        ("biden.jpg", {"identity": "Joe Biden"}),
        ("Tom_Hanks_54745.png", {"identity": "Tom Hanks"}),
        ("grace_hopper.jpg", {"identity": "Grace Hopper"}),
        ("0-f15-hao-ph.jpg", {"expression": "happy"}),
        ("15-f13-anc-ph.jpg", {"expression": "anger"}),
        ("0-f1-su-ph.jpg", {"expression": "surprise"}),
        ("t1.jpg", {}),
        ("sample3.jpg", {}),
        ("single_face.mp4", {}),
    ],
)
def test_labels_from_filename(name, labels):
    assert labels_from_filename(name) == labels


def test_mobilenet_key_mapping_checks_shapes():
    import torch

    src = {"features.0.0.weight": torch.zeros(32, 3, 3, 3), "features.0.1.weight": torch.zeros(32)}
    ok = {"conv_stem.weight": torch.zeros(32, 3, 3, 3), "bn1.weight": torch.zeros(32)}
    assert list(torchvision_to_timm_mobilenetv2(src, ok)) == ["conv_stem.weight", "bn1.weight"]
    with pytest.raises(AssetError, match=r"cannot map torchvision features.0.1.weight \(32,\) onto timm bn1"):
        torchvision_to_timm_mobilenetv2(src, dict(ok, **{"bn1.weight": torch.zeros(16)}))
    with pytest.raises(AssetError, match="have 2 tensors, timm mobilenetv2_100 expects 1"):
        torchvision_to_timm_mobilenetv2(src, {"conv_stem.weight": torch.zeros(32, 3, 3, 3)})
