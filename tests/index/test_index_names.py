"""Gallery names: one strict rule, and the only place a name becomes a directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from facevlm.errors import FacevlmError
from facevlm.index.names import cli_gallery_path, gallery_path, is_gallery_name, validate_gallery_name

GOOD = ["a", "default", "family-2024", "my_photos", "0", "a" * 64]
BAD = [
    "",
    ".",
    "..",
    "../x",
    "x/..",
    "/etc",
    "\\\\server",
    "a\\b",
    "x\x00",
    "x\n",
    "a" * 65,
    "Family",
    "-x",
    "_x",
    "\uff0e\uff0e",
    "\u0430",
    "caf\u00e9",
    "a b",
    "~",
    "~root",
    "C:",
    "a.b",
    None,
    5,
    b"abc",
]


@pytest.mark.parametrize("name", GOOD)
def test_good_names(name):
    assert validate_gallery_name(name) == name and is_gallery_name(name)
    assert gallery_path(Path("/root/galleries"), name) == Path("/root/galleries") / name


@pytest.mark.parametrize("name", BAD, ids=[repr(b) for b in BAD])
def test_bad_names_never_become_paths(name):
    assert not is_gallery_name(name)
    with pytest.raises(FacevlmError, match="gallery name") as err:
        gallery_path(Path("/root/galleries"), name)
    assert err.value.status_code == 400 and "\n" not in str(err.value)


def test_the_cli_also_takes_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEVLM_HOME", str(tmp_path))
    assert cli_gallery_path("family") == tmp_path / "galleries" / "family"
    assert cli_gallery_path("./here") == Path("./here")
    assert cli_gallery_path(str(tmp_path / "g")) == tmp_path / "g"
    assert cli_gallery_path("~/g") == Path.home() / "g"
    with pytest.raises(FacevlmError, match=r"give a path \(\./Family\)"):
        cli_gallery_path("Family")
