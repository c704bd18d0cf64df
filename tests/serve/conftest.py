"""A real gateway for the serve tests: `facevlm serve` in a uvicorn subprocess on 127.0.0.1 with a
seeded tiny FaceCLIP saved to disk (so the test process can compute the same embeddings), stopped by
PID at the end of the session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

API_KEY = "sk-test-facevlm"


@dataclass
class Gateway:
    url: str
    key: str
    model: str  # the FaceCLIP folder the server loaded
    galleries: Path
    proc: subprocess.Popen

    def client(self, key: str | None = API_KEY) -> httpx.Client:
        """An HTTP client sending `key` as Bearer token (None: no Authorization header)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    home = tmp_path_factory.mktemp("serve")
    from facevlm.index.synthetic import save_tiny_model

    model = save_tiny_model(home / "models" / "tiny-serve")
    port = _free_port()
    recipe = home / "serve.yaml"
    recipe.write_text(f"""
host: 127.0.0.1
port: {port}
model: {model}
served_model_name: facevlm-clip-tiny
torch_threads: 1
galleries_dir: {home / 'galleries'}
detect: false
label: false
api_keys: [{API_KEY}]
log_level: warning
limits:
  max_request_bytes: 4000000
  max_image_bytes: 2000000
  max_image_pixels: 4000000
""")
    log = open(home / "gateway.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "facevlm.cli", "serve", str(recipe)], stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"gateway did not start:\n{(home / 'gateway.log').read_text()[-3000:]}")
        time.sleep(0.3)
    yield Gateway(url, API_KEY, model, home / "galleries", proc)
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


@pytest.fixture(scope="session")
def local_embedder(gateway: Gateway):
    """The same weights as the server, in the test process."""
    from facevlm.index.embed import get_embedder

    return get_embedder(gateway.model)
