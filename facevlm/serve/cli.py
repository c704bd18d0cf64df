"""`facevlm serve serve/cpu.yaml`: run the gateway with uvicorn on the configured (loopback) address."""

from __future__ import annotations

import click


@click.command("serve", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--host", default=None, help="Override the recipe's host (non-loopback needs api_keys).")
@click.option("--port", type=int, default=None, help="Override the recipe's port.")
@click.option("--model", default=None, help="Override the FaceCLIP model (name, folder or hub id).")
@click.option("--galleries-dir", default=None, help="Override where galleries live.")
def serve(recipe: str, host: str | None, port: int | None, model: str | None, galleries_dir: str | None) -> None:
    """Start the gateway: /v1/embeddings, /v1/faces/search, /v1/galleries/{name}/faces (OpenAPI at /docs).

    Writes its PID to $FACEVLM_HOME/run/gateway-<port>.pid while it runs."""
    import dataclasses
    import os
    import signal
    import sys

    from facevlm import paths
    from facevlm.serve.config import load_serve_config

    cfg = load_serve_config(recipe)
    overrides = {
        k: v
        for k, v in {"host": host, "port": port, "model": model, "galleries_dir": galleries_dir}.items()
        if v is not None
    }
    cfg = dataclasses.replace(cfg, **overrides)  # runs ServeConfig.__post_init__ again: overrides are checked too

    import uvicorn

    from facevlm.serve.app import create_app

    app = create_app(cfg)  # loads FaceCLIP before the port opens: a bad model fails here, in one line
    pid_file = paths.run_dir() / f"gateway-{cfg.port}.pid"
    pid_file.write_text(str(os.getpid()))
    click.echo(f"facevlm gateway on http://{cfg.host}:{cfg.port} (model {cfg.model_id}; docs at /docs)", err=True)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with the handler it found: make that
    # handler a clean exit, so `finally` runs (the PID file goes) and the exit status is 0, not -15.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:  # uvicorn takes httptools and uvloop (main environment) when installed: ~0.4 ms less per request
        uvicorn.run(
            app, host=cfg.host, port=cfg.port, log_level=cfg.log_level, limit_concurrency=1024, timeout_keep_alive=30
        )
    finally:
        pid_file.unlink(missing_ok=True)
