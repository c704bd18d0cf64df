"""The gateway's config validates itself: no way of building one binds a public address without API keys."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from facevlm.cli import cli
from facevlm.config import from_dict, load_recipe
from facevlm.errors import FacevlmError
from facevlm.serve.config import LimitsConfig, ServeConfig


@pytest.fixture(autouse=True)
def _no_env_keys(monkeypatch, tmp_path):
    monkeypatch.delenv("FACEVLM_API_KEYS", raising=False)
    monkeypatch.setenv("FACEVLM_HOME", str(tmp_path / "home"))


def test_cli_refuses_a_public_host_without_keys(tmp_path):
    # the model does not exist, so a gateway that wrongly got past the check fails to start instead of serving
    args = ["serve", "serve/cpu.yaml", "--host", "0.0.0.0", "--model", str(tmp_path / "none")]
    result = CliRunner().invoke(cli, args)
    assert isinstance(result.exception, FacevlmError), result.output
    assert "not loopback" in str(result.exception) and "api_keys" in str(result.exception)
    assert not list((tmp_path / "home").glob("run/gateway-*.pid"))


def test_cli_overrides_are_checked_too(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "serve/cpu.yaml", "--port", "70000", "--model", str(tmp_path / "none")])
    assert isinstance(result.exception, FacevlmError) and "70000" in str(result.exception)


def test_every_way_of_building_the_config_checks_the_host(tmp_path, monkeypatch):
    with pytest.raises(FacevlmError, match="not loopback"):
        ServeConfig(host="0.0.0.0")
    with pytest.raises(FacevlmError, match="not loopback"):
        from_dict(ServeConfig, {"host": "::"})
    recipe = tmp_path / "public.yaml"
    recipe.write_text("host: 0.0.0.0\n")
    with pytest.raises(FacevlmError, match="not loopback"):
        load_recipe(ServeConfig, recipe)
    with pytest.raises(FacevlmError, match="not loopback"):
        dataclasses.replace(ServeConfig(), host="192.168.1.5")
    assert ServeConfig(host="0.0.0.0", api_keys=["k"]).keys() == ["k"]
    monkeypatch.setenv("FACEVLM_API_KEYS", " a, b ,")
    assert ServeConfig(host="0.0.0.0").keys() == ["a", "b"]


@pytest.mark.parametrize(
    "bad",
    [
        {"port": 0},
        {"port": 65536},
        {"port": True},
        {"log_level": "loud"},
        {"default_gallery": "../x"},
        {"api_keys": "sk-one"},
    ],
)
def test_bad_serve_values_are_refused(bad):
    with pytest.raises(FacevlmError):
        from_dict(ServeConfig, bad)


@pytest.mark.parametrize(
    "bad",
    [
        {"max_inputs": 0},
        {"max_files": -1},
        {"max_image_bytes": 1.5},
        {"max_image_pixels": True},
        {"max_image_bytes": 64, "max_request_bytes": 32},
    ],
)
def test_limits_validate_themselves(bad):
    with pytest.raises(FacevlmError, match="limits"):
        LimitsConfig(**bad)
    with pytest.raises(FacevlmError, match="limits"):
        from_dict(ServeConfig, {"limits": bad})


def test_model_id_never_shows_a_local_path():
    assert ServeConfig(model="/srv/models/face-clip").model_id == "face-clip"
    assert ServeConfig(model="org/face-clip").model_id == "org/face-clip"  # a hub id stays itself
    assert ServeConfig(model="/srv/x", served_model_name="mine").model_id == "mine"


def test_identity_settings_are_checked():
    from facevlm.serve.config import IdentityConfig

    cfg = from_dict(ServeConfig, {"identity": {"threshold": 0.5, "max_cluster_faces": 10}})
    assert cfg.identity == IdentityConfig(threshold=0.5, max_cluster_faces=10)
    for bad in ({"threshold": 0}, {"threshold": 11}, {"threshold": True}, {"max_cluster_faces": 0}, {"model": ""}):
        with pytest.raises(FacevlmError, match="identity"):
            from_dict(ServeConfig, {"identity": bad})
    with pytest.raises(FacevlmError, match="unknown key"):
        from_dict(ServeConfig, {"identity": {"treshold": 0.5}})
    assert load_recipe(ServeConfig, "serve/cpu.yaml").identity == IdentityConfig()
