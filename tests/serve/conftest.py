"""A real gateway for the serve tests: `facevlm serve` in a uvicorn subprocess on 127.0.0.1 with a
seeded tiny FaceCLIP saved to disk (so the test process can compute the same embeddings), its own
$FACEVLM_HOME, stopped by PID at the end of the session. Every JSON response the tests' clients receive
is kept in `Gateway.responses`, so a test can check that none carries a server path."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from processes import free_port, serving

API_KEY = "sk-test-facevlm"


@dataclass
class Gateway:
    url: str
    key: str
    model: str  # the FaceCLIP folder the server loaded
    galleries: Path
    home: Path  # the server's $FACEVLM_HOME
    proc: subprocess.Popen
    responses: list[tuple[str, str]] = field(default_factory=list)  # (request line, JSON text)

    def client(self, key: str | None = API_KEY) -> httpx.Client:
        """An HTTP client sending `key` as Bearer token (None: no Authorization header)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, event_hooks={"response": [self._record]})

    def _record(self, response: httpx.Response) -> None:
        if response.headers.get("content-type", "").startswith("application/json"):
            response.read()
            self.responses.append((f"{response.request.method} {response.request.url}", response.text))


@pytest.fixture(scope="session")
def serve_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    from fakes import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-serve")


def link_assets(home: Path) -> Path:
    """A fresh $FACEVLM_HOME whose assets/ is the session's fetched assets (read only by the server): the
    identity model always needs dlib-face-models, detection the detector."""
    from facevlm import paths

    home.mkdir(parents=True, exist_ok=True)
    if not (home / "assets").exists():
        (home / "assets").symlink_to(paths.assets_dir(), target_is_directory=True)
    return home


@contextmanager
def run_gateway(home: Path, model: str, detect: bool = False) -> Iterator[Gateway]:
    """`facevlm serve` on a free loopback port with galleries and $FACEVLM_HOME under `home`; stopped by
    PID (SIGTERM, then SIGKILL) when the block ends. `detect`: find faces in uploads (the real detector)."""
    port = free_port()
    recipe = home / "serve.yaml"
    recipe.write_text(f"""
host: 127.0.0.1
port: {port}
model: {model}
served_model_name: facevlm-clip-tiny
torch_threads: 1
galleries_dir: {home / "galleries"}
detect: {"true" if detect else "false"}
label: false
api_keys: [{API_KEY}]
log_level: warning
limits:
  max_request_bytes: 4000000
  max_image_bytes: 2000000
  max_image_pixels: 4000000
""")
    server_home = link_assets(home / "home")
    env = {k: v for k, v in os.environ.items() if k != "FACEVLM_API_KEYS"} | {"FACEVLM_HOME": str(server_home)}
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "facevlm.cli", "serve", str(recipe)]
    with serving(cmd, f"{url}/healthz", home / "gateway.log", env, timeout=180, what="gateway") as proc:
        yield Gateway(url, API_KEY, model, home / "galleries", home / "home", proc)


@pytest.fixture
def server_home(tmp_path: Path, assets_home: Path) -> Path:
    """A fresh $FACEVLM_HOME with the fetched assets, for in-process apps."""
    return link_assets(tmp_path / "home")


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, serve_model: str, assets_home: Path) -> Iterator[Gateway]:
    with run_gateway(tmp_path_factory.mktemp("serve"), serve_model) as gw:
        yield gw


@pytest.fixture(scope="module")
def fresh_gateway(tmp_path_factory: pytest.TempPathFactory, serve_model: str, assets_home: Path) -> Iterator[Gateway]:
    """A gateway of the test module's own, for tests that check the whole disk or erase any gallery."""
    with run_gateway(tmp_path_factory.mktemp("fresh"), serve_model) as gw:
        yield gw


@pytest.fixture(scope="session")
def local_embedder(gateway: Gateway):
    """The same weights as the server, in the test process."""
    from facevlm.index.embed import get_embedder

    return get_embedder(gateway.model)


@pytest.fixture(scope="module")
def detecting_gateway(
    tmp_path_factory: pytest.TempPathFactory, serve_model: str, assets_home: Path
) -> Iterator[Gateway]:
    """A gateway of the module's own that finds faces in uploads (the real detector and landmarks)."""
    with run_gateway(tmp_path_factory.mktemp("detect"), serve_model, detect=True) as gw:
        yield gw
