"""A real gateway (FaceCLIP, the real face detector, in-process chat on the session's tiny FaceVLM, API keys)
and the web UI in front of it, each a subprocess on a free loopback port with its own $FACEVLM_HOME under
the module's tmp dir, both stopped by PID at the end; and headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from processes import free_port, serving

API_KEY = "sk-ui-test"
CHROMIUM = "/usr/bin/chromium"
CHAT_MODEL = "facevlm-chat-tiny"


@dataclass
class Stack:
    gateway: str  # base URL
    ui: str
    key: str
    home: Path  # tmp folder: recipe, logs, the gateway's $FACEVLM_HOME and galleries
    pids: list[int]
    chat_model: str = CHAT_MODEL

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.gateway, headers={"Authorization": f"Bearer {self.key}"}, timeout=120)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tiny_vlm: dict[str, Path], assets_home: Path) -> Iterator[Stack]:
    from fakes import save_tiny_clip

    from facevlm import paths

    root = tmp_path_factory.mktemp("ui")
    home = root / "home"
    home.mkdir()
    (home / "assets").symlink_to(paths.assets_dir(), target_is_directory=True)  # detector, identity model
    port, ui_port = free_port(), free_port()
    recipe = root / "serve.yaml"
    recipe.write_text(f"""
host: 127.0.0.1
port: {port}
model: {save_tiny_clip(root / "clip")}
served_model_name: facevlm-clip-tiny
torch_threads: 1
galleries_dir: {root / "galleries"}
detect: true
label: true
api_keys: [{API_KEY}]
log_level: warning
chat:
  model: {tiny_vlm["sft"]}
  served_model_name: {CHAT_MODEL}
  backend: in_process
  max_tokens: 64
  default_max_tokens: 32
  max_model_len: 1024
""")
    env = {k: v for k, v in os.environ.items() if k != "FACEVLM_API_KEYS"} | {
        "FACEVLM_HOME": str(home),
        "GRADIO_TEMP_DIR": str(root / "gradio-cache"),
    }
    gateway, ui = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}"
    with ExitStack() as running:
        servers = (
            ("gateway", [sys.executable, "-m", "facevlm.cli", "serve", str(recipe)], f"{gateway}/healthz"),
            ("ui", [sys.executable, "-m", "facevlm.ui", "--gateway", gateway, "--port", str(ui_port)], f"{ui}/"),
        )
        pids = [
            running.enter_context(serving(cmd, ready, root / f"{name}.log", env, timeout=300, what=name)).pid
            for name, cmd, ready in servers
        ]
        yield Stack(gateway, ui, API_KEY, root, pids)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Debian Chromium (as root it needs --no-sandbox; no background network: nothing is fetched)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup-env.sh main installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
        )
        try:
            yield chromium
        finally:
            chromium.close()
