"""The OpenAPI spec tells the truth: schemathesis (`--checks all`, every phase: examples, coverage, fuzzing,
stateful) against a live gateway finds no 5xx, no undocumented status, no response off its schema, no
schema-valid request refused and no schema-invalid request accepted.

Set up so that every check can do its job, none is excluded:
- auth is the spec's own `HTTPBearer` scheme, given its key in schemathesis.toml, so `ignored_auth` and
  `missing_required_header` probe the routes without it and expect 401;
- tests/serve/schemathesis_hooks.py draws real images for the `image-data-uri` and `binary` formats (a
  JSON schema cannot say "these bytes decode as an 8x8 picture"; the spec says it in words);
- the `default` gallery holds a few faces, so searches reach the index instead of stopping at 404.
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


@pytest.mark.timeout(600)
def test_schemathesis_finds_nothing(fresh_gateway, tmp_path):
    with fresh_gateway.client() as http:
        files = [("file", (f"p{i}.png", pattern_png(500 + i), "image/png")) for i in range(4)]
        assert http.post("/v1/galleries/default/faces", files=files).status_code == 201
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'hooks = "schemathesis_hooks"\n\n[auth.openapi.HTTPBearer]\nbearer = "{fresh_gateway.key}"\n')
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [
        str(exe),
        "--config-file",
        str(config),
        "run",
        f"{fresh_gateway.url}/openapi.json",
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
    ]
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parent)}  # where the hooks module is
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=540, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert "18 selected / 18 total" in run.stdout and " passed" in run.stdout, run.stdout[-3000:]
    log = (fresh_gateway.galleries.parent / "gateway.log").read_text()
    assert "Traceback" not in log, log[-3000:]
