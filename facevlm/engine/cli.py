"""`facevlm engine start|stop|status`."""

from __future__ import annotations

import click

from facevlm.errors import FacevlmError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def engine() -> None:
    """Start/stop the vLLM OpenAI server from the engine environment (.venv-engine)."""


def _parse_lora(values: tuple[str, ...]) -> dict[str, str]:
    loras = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise FacevlmError(f"--lora expects NAME=DIR, got {value!r}")
        loras[name] = path
    return loras


@engine.command()
@click.option("--model", required=True, help="HF model folder (or a hub id when you have the hub).")
@click.option("--lora", "loras", multiple=True, metavar="NAME=DIR", help="Serve a peft LoRA adapter under NAME.")
@click.option("--port", default=8000, show_default=True, help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--served-model-name", default=None, help="Model name clients use (default: folder name).")
@click.option("--max-model-len", default=2048, show_default=True)
@click.option("--max-lora-rank", default=16, show_default=True)
@click.option("--kv-cache-gib", default=1, show_default=True, help="CPU hosts: KV cache size.")
@click.option(
    "--tool-call-parser",
    default="hermes",
    show_default=True,
    help="vLLM tool-call parser (FaceVLM writes Hermes-style calls); '' = none.",
)
@click.option("--timeout", "timeout_s", default=300.0, show_default=True, help="Seconds to wait for /v1/models.")
@click.argument("extra_args", nargs=-1, type=click.UNPROCESSED)
def start(
    model: str,
    loras: tuple[str, ...],
    port: int,
    host: str,
    served_model_name: str | None,
    max_model_len: int,
    max_lora_rank: int,
    kv_cache_gib: int,
    tool_call_parser: str,
    timeout_s: float,
    extra_args: tuple[str, ...],
) -> None:
    """Start vLLM's OpenAI server; returns once /v1/models answers. Args after `--` go to vLLM."""
    from facevlm.engine.launcher import EngineConfig
    from facevlm.engine.launcher import start as start_engine

    cfg = EngineConfig(
        model=model,
        host=host,
        port=port,
        served_model_name=served_model_name,
        loras=_parse_lora(loras),
        max_lora_rank=max_lora_rank,
        max_model_len=max_model_len,
        kv_cache_gib=kv_cache_gib,
        extra_args=list(extra_args),
        startup_timeout_s=timeout_s,
        tool_call_parser=tool_call_parser or None,
    )
    click.echo(f"starting vLLM for {model} (log under $FACEVLM_HOME/run) ...", err=True)
    handle = start_engine(cfg)
    click.echo(f"engine ready: {handle.url} (pid {handle.pid}, model {handle.served_model_name})")


@engine.command()
@click.option("--port", default=None, type=int, help="Stop the engine on this port (default: all).")
def stop(port: int | None) -> None:
    """Stop the engine(s) this machine's facevlm started, with their whole process tree."""
    from facevlm.engine.launcher import status as engine_status
    from facevlm.engine.launcher import stop as stop_engine

    ports = [port] if port is not None else [h.port for h in engine_status()]
    if not ports:
        click.echo("no engine running")
    for p in ports:
        click.echo(f"port {p}: {'stopped' if stop_engine(p) else 'no engine running'}")


@engine.command()
def status() -> None:
    """List running engines."""
    from facevlm.engine.launcher import status as engine_status

    handles = engine_status()
    if not handles:
        click.echo("no engine running")
    for h in handles:
        click.echo(f"{h.url}  pid {h.pid}  model {h.served_model_name}  log {h.log}")
