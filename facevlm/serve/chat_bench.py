"""`facevlm bench chat-load`: N concurrent chat clients against the gateway's /v1/chat/completions, and the
chat client the chat benches share (facevlm.serve.chat_bench_backends).

Every request is what a real client sends: a real photo of the `samples` asset as a data: URI and a short
question, streamed (`stream_options.include_usage`) so the client sees when the first token arrives; the
load machinery (clients, 429 back-off, percentiles, status counts) is facevlm.index.loadtest's. By
default it starts `facevlm serve RECIPE` on a free loopback port (galleries in a temporary folder; the
recipe's chat backend unless `--backend` says otherwise), runs the clients for `--duration` seconds,
stops the gateway by PID and prints a Markdown row with the command. `--url` targets a running gateway.
5xx (and server errors inside streams) fail the run; 429s (rate limits, a full chat queue) are counted
apart, and their client waits Retry-After as OpenAI's clients do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from facevlm.errors import FacevlmError
from facevlm.index.loadtest import (
    STREAM_SERVER_ERROR,
    Sample,
    Summary,
    check_loopback,
    drive,
    retry_after,
    start_gateway,
    summarize,
)
from facevlm.procs import free_port, peak_rss_mib, stop_process
from facevlm.serve.config import ServeConfig

SHORT_QUESTION = "What is the facial expression of this person?"
GATEWAY_START_S = 900.0  # a gateway that starts its own vLLM engine first waits for it (~25-70 s on CPU)


def sample_photos(names: tuple[str, ...] = ()) -> list[bytes]:
    """The bytes of the `samples` asset's photos named (file names), all of them when none are."""
    from facevlm.assets import samples

    records = samples("image")
    files = {r["file"]: Path(r["path"]) for r in records}
    missing = [n for n in names if n not in files]
    if missing:
        raise FacevlmError(f"--photo {', '.join(missing)}: not in the samples asset ({', '.join(sorted(files))})")
    return [files[n].read_bytes() for n in (names or sorted(files))]


def photo_uri(data: bytes) -> str:
    """A data: URI with the mime type the bytes are (sniffed as the gateway sniffs them)."""
    from facevlm.image import sniff, to_data_uri

    return to_data_uri(data, "image/" + sniff(data)[0].lower())


def chat_body(model: str, image_uri: str, question: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
    """One streamed, greedy chat request about one photo."""
    content = [{"type": "image_url", "image_url": {"url": image_uri}}, {"type": "text", "text": question}]
    return {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        **extra,
    }


async def stream_chat(http: Any, body: dict[str, Any]) -> Sample:
    """POST a streamed chat request to `chat/completions` under the client's OpenAI base URL (the
    gateway's /v1 or vLLM's) and read it to the end: time to the first content token, completion tokens
    from the usage chunk. An error event inside the stream is its own status (`stream TYPE:CODE`)."""
    t0 = time.perf_counter()
    ttft, tokens = None, 0
    async with http.stream("POST", "chat/completions", json=body) as res:
        if res.status_code != 200:
            await res.aread()
            return Sample(res.status_code, retry_after=retry_after(res) if res.status_code == 429 else None)
        async for line in res.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                return Sample(stream_error_label(chunk["error"]))
            if ttft is None and any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or []):
                ttft = (time.perf_counter() - t0) * 1e3
            if chunk.get("usage"):
                tokens = int(chunk["usage"].get("completion_tokens") or 0)
    return Sample(200, ttft_ms=ttft, tokens=tokens)


def stream_error_label(error: Any) -> str:
    """The status label of an error event: the gateway's `server_error` type, vLLM's InternalServerError
    or any 5xx code counts as a server error (facevlm.index.loadtest.Sample.server_error)."""
    error = error if isinstance(error, dict) else {"message": str(error)}
    kind, code = error.get("type"), error.get("code")
    server = kind in ("server_error", "InternalServerError") or (isinstance(code, int) and code >= 500)
    return f"{STREAM_SERVER_ERROR}:{code}" if server else f"stream {kind}:{code}"


def chat_model_id(url: str, headers: dict[str, str]) -> str:
    """The first chat model of the gateway's /v1/models (`kind: chat`: the model before its adapters)."""
    import httpx

    res = httpx.get(f"{url}/v1/models", headers=headers, timeout=30)
    if res.status_code != 200:
        raise FacevlmError(f"{url}/v1/models answered {res.status_code}: {res.text[:200]}")
    ids = [card["id"] for card in res.json()["data"] if card.get("kind") == "chat"]
    if not ids:
        raise FacevlmError(f"the gateway at {url} serves no chat model (chat.model is empty in its recipe)")
    return ids[0]


def warm_up(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    """One request before the clock starts (the first one pays for lazy loading and first-call set-up);
    it must succeed."""

    async def ask(http: Any, i: int) -> Sample:
        return await stream_chat(http, body)

    (sample,) = asyncio.run(drive(url, 1, ask, total=1, headers=headers, timeout=1800)).samples
    if not sample.ok:
        raise FacevlmError(f"the warm-up request to {url} failed: {sample.status}")
    click.echo(f"warm-up request: {sample.latency_ms / 1e3:.1f} s", err=True)


def write_recipe(cfg: ServeConfig, path: Path) -> Path:
    """`cfg` as a serve recipe (checked by loading it back, as `facevlm serve` will)."""
    import yaml

    from facevlm.config import to_dict
    from facevlm.serve.config import load_serve_config

    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    load_serve_config(path)
    return path


@contextmanager
def run_gateway(cfg: ServeConfig, folder: Path, name: str) -> Iterator[tuple[str, Any]]:
    """`facevlm serve` with `cfg` on a free loopback port, galleries under `folder`; yields (URL, process)
    and stops it by PID (its own engine with it) when the block ends."""
    port = free_port()
    cfg = dataclasses.replace(cfg, host="127.0.0.1", port=port, galleries_dir=str(folder / "galleries"))
    recipe = write_recipe(cfg, folder / f"{name}.yaml")
    click.echo(f"starting the gateway ({name}, chat backend {cfg.chat.backend_kind()})...", err=True)
    proc = start_gateway(recipe, None, None, port, folder / f"{name}.log", timeout_s=GATEWAY_START_S)
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        stop_process(proc)


def load_row(backend: str, duration: float, s: Summary, rss: float) -> str:
    return (
        f"| {backend} | {s.clients} | {duration:.0f} s | {s.requests} | {s.ok} | {s.rate_limited} | "
        f"{s.server_errors} | {s.transport_errors} | {s.requests_per_s:.2f} | {s.p50_ms:.0f} ms | {s.p95_ms:.0f} ms | "
        f"{s.ttft_p50_ms:.0f} ms | {s.ttft_p95_ms:.0f} ms | {s.tokens_per_s:.1f} | {s.tokens_per_request:.1f} | "
        f"{rss:.0f} MiB |"
    )


LOAD_HEADER = (
    "| chat backend | clients | duration | requests | 200 | 429 | 5xx | transport errors | req/s | p50 | p95 | "
    "TTFT p50 | TTFT p95 | completion tokens/s | tokens/answer | gateway peak RSS |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


@click.command("chat-load", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--recipe", default="serve/cpu.yaml", show_default=True, help="Gateway recipe to start.")
@click.option("--url", default=None, help="Use a running gateway (loopback only) instead of starting one.")
@click.option(
    "--backend",
    type=click.Choice(["recipe", "in_process", "vllm"]),
    default="recipe",
    show_default=True,
    help="Chat backend of the started gateway (vllm: it starts and stops an engine of its own).",
)
@click.option("--model", default=None, help="Chat model id to ask (default: the gateway's first chat model).")
@click.option("--clients", type=int, default=50, show_default=True)
@click.option("--duration", type=float, default=60.0, show_default=True, help="Seconds of load.")
@click.option("--max-tokens", type=int, default=16, show_default=True, help="Short answers.")
@click.option("--photo", "photos", multiple=True, help="Sample photo file(s) to send in turn (default: all).")
@click.option("--question", default=SHORT_QUESTION, show_default=True)
@click.option("--api-key", envvar="FACEVLM_API_KEY", default=None, help="Default: the recipe's first key.")
def chat_load_cmd(
    recipe: str,
    url: str | None,
    backend: str,
    model: str | None,
    clients: int,
    duration: float,
    max_tokens: int,
    photos: tuple[str, ...],
    question: str,
    api_key: str | None,
) -> None:
    """Concurrent streamed chat clients for DURATION s; reports p50/p95 latency and time to first token."""
    if not 1 <= clients <= 1000 or not 0 < duration <= 3600 or not 1 <= max_tokens <= 4096:
        raise FacevlmError("--clients must be 1..1000, --duration 0..3600 s and --max-tokens 1..4096")
    uris = [photo_uri(data) for data in sample_photos(photos)]
    with tempfile.TemporaryDirectory(prefix="facevlm-chat-load-") as tmp:
        if url is not None:
            check_loopback(url)
            result, rss = _load(url, None, model, uris, question, max_tokens, clients, duration, api_key)
            kind = "gateway at --url"
        else:
            from facevlm.serve.config import load_serve_config

            cfg = load_serve_config(recipe)
            if backend != "recipe":
                cfg = dataclasses.replace(cfg, chat=dataclasses.replace(cfg.chat, backend=backend))
            api_key = api_key or next(iter(cfg.keys()), None)
            with run_gateway(cfg, Path(tmp), "gateway") as (gw, proc):
                result, rss = _load(gw, proc, model, uris, question, max_tokens, clients, duration, api_key)
            kind = cfg.chat.backend_kind()
    click.echo(f"command: facevlm bench chat-load {' '.join(sys.argv[3:])}".rstrip())
    click.echo(f"statuses: {result.statuses}")
    click.echo(LOAD_HEADER)
    click.echo(load_row(kind, duration, result, rss))
    if result.server_errors or result.transport_errors:
        raise FacevlmError(f"{result.server_errors} 5xx and {result.transport_errors} transport errors")


def _load(
    url: str,
    proc: Any,
    model: str | None,
    uris: list[str],
    question: str,
    max_tokens: int,
    clients: int,
    duration: float,
    api_key: str | None,
) -> tuple[Summary, float]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    model = model or chat_model_id(url, headers)
    bodies = [chat_body(model, uri, question, max_tokens) for uri in uris]

    async def ask(http: Any, i: int) -> Sample:
        return await stream_chat(http, bodies[i % len(bodies)])

    warm_up(f"{url}/v1/", bodies[0], headers)
    click.echo(f"{clients} chat clients for {duration:.0f} s against {url} (model {model}) ...", err=True)
    result = asyncio.run(drive(f"{url}/v1/", clients, ask, duration=duration, headers=headers, timeout=600))
    rss = peak_rss_mib(proc.pid) if proc is not None else float("nan")
    return summarize(result), rss
