"""`facevlm index add/search/rm/stats` through the real CLI entry point (click runner, same process)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from fakes import write_pattern_images

from facevlm.cli import cli


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_index_cli_round_trip(tmp_path, tiny_model):
    photos = write_pattern_images(tmp_path / "photos", 5)
    (tmp_path / "photos" / "notes.txt").write_text("not an image")  # ignored: not an image suffix
    gallery = str(tmp_path / "g")
    out = _run("index", "add", gallery, str(tmp_path / "photos"), "--no-detect", "--no-label", "--model", tiny_model)
    assert "5 faces added" in out and "5 added" in out
    assert "5 skipped" in _run("index", "add", gallery, str(photos[0].parent), "--no-detect", "--no-label")
    stats = json.loads(_run("index", "stats", gallery, "--json"))
    assert stats["faces"] == stats["vectors"] == stats["images"] == 5
    hits = json.loads(_run("index", "search", gallery, "a smiling face", "-k", "3", "--json"))
    assert len(hits) == 3 and hits[0]["score"] >= hits[-1]["score"]
    by_image = json.loads(
        _run("index", "search", gallery, "--image", str(photos[2]), "--no-detect", "-k", "1", "--json")
    )
    assert by_image[0]["source"] == str(photos[2])
    assert "erased 1 of 1" in _run("index", "rm", gallery, str(by_image[0]["face_id"]))
    assert json.loads(_run("index", "stats", gallery, "--json"))["faces"] == 4
    table = _run("index", "search", gallery, "a face")
    assert "text search" in table
    assert "erased gallery" in _run("index", "drop", gallery, "--yes")
    assert not (tmp_path / "g").exists()


def test_index_cli_names_resolve_under_facevlm_home(tmp_path, tiny_model, linked_home):
    photos = write_pattern_images(tmp_path / "photos", 2)
    assert "2 faces added" in _run(
        "index", "add", "family", str(photos[0].parent), "--no-detect", "--no-label", "--model", tiny_model
    )
    assert (tmp_path / "home" / "galleries" / "family" / "gallery.json").is_file()
    declined = CliRunner().invoke(cli, ["index", "drop", "family"], input="n\n")
    assert declined.exit_code != 0 and (tmp_path / "home" / "galleries" / "family").is_dir()
    assert "(2 faces)" in _run("index", "drop", "family", "--yes")
    assert not (tmp_path / "home" / "galleries" / "family").exists()
    from facevlm.errors import FacevlmError

    for bad in ("Family", "..x"):
        result = CliRunner().invoke(cli, ["index", "stats", bad])
        assert isinstance(result.exception, FacevlmError), result.output


def test_index_cli_errors_are_one_line(tmp_path, tiny_model):
    from facevlm.errors import FacevlmError

    result = CliRunner().invoke(cli, ["index", "stats", str(tmp_path / "missing")])
    assert isinstance(result.exception, FacevlmError) and "does not exist" in str(result.exception)
    result = CliRunner().invoke(cli, ["index", "search", str(tmp_path / "missing")])
    assert isinstance(result.exception, FacevlmError) and "exactly one of" in str(result.exception)
