"""`facevlm ui --gateway URL`: the web UI on its own port, calling the gateway at URL over HTTP."""

from __future__ import annotations

import click

from facevlm.lazycli import HELP_OPTIONS


@click.command("ui", context_settings=HELP_OPTIONS)
@click.option("--gateway", default="http://127.0.0.1:8000", show_default=True, help="The gateway's base URL.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the UI binds (loopback by default).")
@click.option("--port", type=int, default=7860, show_default=True, help="The UI's port.")
def ui(gateway: str, host: str, port: int) -> None:
    """Serve the chat and gallery pages. Users type the gateway's API key in the page when it has keys;
    the UI holds no key of its own, so exposing it exposes nothing the gateway would not refuse."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from facevlm.errors import FacevlmError
    from facevlm.ui.app import build_ui, launch_kwargs

    if not gateway.startswith(("http://", "https://")):
        raise FacevlmError(f"--gateway {gateway!r}: give the gateway's base URL, e.g. http://127.0.0.1:8000")
    click.echo(f"facevlm UI on http://{host}:{port} (gateway {gateway})", err=True)
    build_ui(gateway).launch(server_name=host, server_port=port, show_error=False, quiet=True, **launch_kwargs())
