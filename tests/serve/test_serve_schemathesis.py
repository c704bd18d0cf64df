"""The OpenAPI spec tells the truth: schemathesis (`--checks all`, every phase: examples, coverage, fuzzing,
stateful) against a live gateway finds no 5xx, no undocumented status, no response off its schema, no
schema-valid request refused and no schema-invalid request accepted.

Set up so that every check can do its job, none is excluded:
- auth is the spec's own `HTTPBearer` scheme, given its key in schemathesis.toml, so `ignored_auth` and
  `missing_required_header` probe the routes without it and expect 401;
- tests/serve/schemathesis_hooks.py draws real images for the `image-data-uri` and `binary` formats (a
  JSON schema cannot say "these bytes decode as an 8x8 picture"; the spec says it in words);
- the `default` gallery holds a few faces, so searches reach the index instead of stopping at 404;
- /v1/chat/completions runs on a gateway of its own with the tiny FaceVLM (so the schema's model enum is the
  one served); the hooks leave out schema-valid cases with more images than `chat.max_images`, the one
  chat rule a JSON schema cannot state (it is stated in words).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import pattern_png

EXAMPLES_PER_OPERATION = 30
SEED = 0


def _schemathesis(url: str, key: str, cwd: Path, *args: str, env: dict[str, str] | None = None):
    config = cwd / "schemathesis.toml"
    config.write_text(f'hooks = "schemathesis_hooks"\n\n[auth.openapi.HTTPBearer]\nbearer = "{key}"\n')
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [
        str(exe),
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--no-color",
        "--request-timeout",
        "60",
        *args,
    ]
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parent)} | (env or {})  # where the hooks module is
    return subprocess.run(cmd, capture_output=True, text=True, timeout=540, cwd=cwd, env=env)


@pytest.mark.timeout(600)
def test_schemathesis_finds_nothing(fresh_gateway, tmp_path):
    with fresh_gateway.client() as http:
        files = [("file", (f"p{i}.png", pattern_png(500 + i), "image/png")) for i in range(4)]
        assert http.post("/v1/galleries/default/faces", files=files).status_code == 201
    run = _schemathesis(fresh_gateway.url, fresh_gateway.key, tmp_path)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert "18 selected / 18 total" in run.stdout and " passed" in run.stdout, run.stdout[-3000:]
    log = (fresh_gateway.galleries.parent / "gateway.log").read_text()
    assert "Traceback" not in log, log[-3000:]


@pytest.mark.timeout(900)
def test_schemathesis_finds_nothing_on_chat(tmp_path, serve_model, tiny_vlm, assets_home):
    """The chat route (and /v1/models, which lists the chat model then) on a gateway with the tiny FaceVLM
    in process; bounds small enough that every schema-valid prompt fits the model's context."""
    from chat_fixtures import API_KEY, live_gateway, serve_config, tiny_chat

    bounds = {"max_messages": 4, "max_text_chars": 50, "max_tokens": 4, "default_max_tokens": 4, "max_model_len": 4096}
    chat = tiny_chat(tiny_vlm, **bounds)
    with live_gateway(serve_config(tmp_path / "home", serve_model, chat)) as live:
        paths = ("--include-path", "/v1/chat/completions", "--include-path", "/v1/models")
        run = _schemathesis(live.url, API_KEY, tmp_path, *paths, env={"FACEVLM_CHAT_MAX_IMAGES": str(chat.max_images)})
        assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
        assert "2 selected / 19 total" in run.stdout and " passed" in run.stdout, run.stdout[-3000:]
        assert not [line for line in live.log if "Traceback" in line], live.log[-20:]
