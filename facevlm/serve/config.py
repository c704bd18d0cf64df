"""The gateway's recipe (serve/*.yaml) as a dataclass; unknown keys are errors (facevlm.config)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from facevlm import paths
from facevlm.config import load_recipe
from facevlm.errors import FacevlmError
from facevlm.index.backends import BackendConfig
from facevlm.index.search import PDVConfig


@dataclass
class LimitsConfig:
    """Bounds on what one request may make the server read or decode."""

    max_request_bytes: int = 32 * 1024 * 1024
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000  # decompression-bomb guard, checked from the header before decoding
    max_inputs: int = 256  # strings/images per /v1/embeddings request
    max_files: int = 32  # images per add request


@dataclass
class ServeConfig:
    """`api_keys` are accepted Bearer keys; keys in the environment variable `api_keys_env`
    (comma-separated) are added, so secrets need not live in the YAML. No keys = open (loopback only)."""

    host: str = "127.0.0.1"
    port: int = 8000
    model: str = "facevlm-clip-small"
    served_model_name: str = ""  # id shown by /v1/models and accepted as `model`; default: `model`
    device: str = "cpu"
    torch_threads: int = 0  # 0 = torch's default
    galleries_dir: str = ""  # default $FACEVLM_HOME/galleries
    default_gallery: str = "default"
    detect: bool = True
    label: bool = True
    sensitive_attributes: bool = False
    api_keys: list[str] = field(default_factory=list)
    api_keys_env: str = "FACEVLM_API_KEYS"
    log_level: str = "info"
    backend: BackendConfig = field(default_factory=BackendConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    pdv: PDVConfig = field(default_factory=PDVConfig)

    @property
    def model_id(self) -> str:
        return self.served_model_name or self.model

    def galleries_root(self) -> Path:
        return Path(self.galleries_dir).expanduser() if self.galleries_dir else paths.home() / "galleries"

    def keys(self) -> list[str]:
        extra = os.environ.get(self.api_keys_env, "") if self.api_keys_env else ""
        return [k for k in [*self.api_keys, *extra.split(",")] if k.strip()]


def load_serve_config(path: str | Path) -> ServeConfig:
    cfg = load_recipe(ServeConfig, path)
    if not 0 < cfg.port < 65536:
        raise FacevlmError(f"{path}: port {cfg.port} outside 1..65535")
    if not cfg.keys() and cfg.host not in ("127.0.0.1", "localhost", "::1"):
        raise FacevlmError(f"{path}: host {cfg.host} is not loopback; configure api_keys before exposing the gateway")
    return cfg
