"""`facevlm assets list/path/verify` through the real CLI entry point."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from facevlm.assets import manifest, registry
from facevlm.cli import cli, main


def test_list_shows_every_asset_with_sha256_and_licence(assets_home):
    result = CliRunner().invoke(cli, ["assets", "list", "--shallow"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    entries = manifest.load()
    for name, asset in registry.ASSETS.items():
        assert name in result.output
        assert asset.licence.split(" ")[0] in result.output
        files = entries[name].files if name in entries else []
        for f in files:
            assert f.sha256[:12] in result.output and f.path in result.output


def test_path_and_verify(assets_home, capsys):
    main(["assets", "path", "face-detector-ssd"])
    assert capsys.readouterr().out.strip() == str(assets_home / "assets" / "face-detector-ssd")
    main(["assets", "verify", "face-detector-ssd"])
    assert "ok  face-detector-ssd: 2 files" in capsys.readouterr().out


def test_unknown_name_is_error_exit_1(capsys):
    with pytest.raises(SystemExit) as info:
        main(["assets", "path", "nope"])
    assert info.value.code == 1
    assert capsys.readouterr().err.startswith("error: unknown asset 'nope'")
