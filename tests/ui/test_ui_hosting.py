"""The two ways to host the UI: mounted under /ui of a FastAPI app (the host app's routes and OpenAPI
schema untouched), and `facevlm ui`, whose bad options are one-line errors."""

from __future__ import annotations

import subprocess
import sys

ELEMENTS = {"api-key", "gallery-pick", "chatbot", "chat-input", "chat-model", "chat-results", "gallery-results"}


def test_mount_serves_the_ui_under_its_path_and_leaves_the_host_app_alone() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from facevlm.ui.app import mount

    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    mount(app, "http://127.0.0.1:9")  # nothing listens there: building and serving the page calls nobody
    with TestClient(app) as client:
        page = client.get("/ui/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        config = client.get("/ui/config").json()
        assert ELEMENTS <= {c.get("props", {}).get("elem_id") for c in config["components"]}
        assert client.get("/healthz").json() == {"ok": True}
        assert list(client.get("/openapi.json").json()["paths"]) == ["/healthz"]


def test_loopback_url_is_where_a_mounted_ui_calls_its_own_gateway() -> None:
    from facevlm.ui.app import loopback_url

    assert loopback_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert loopback_url("::1", 8000) == "http://[::1]:8000"


def test_ui_command_refuses_a_gateway_that_is_not_a_url_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "facevlm.ui", "--gateway", "localhost:8000"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: --gateway 'localhost:8000': give the gateway's base URL, e.g. http://127.0.0.1:8000"
    ]
