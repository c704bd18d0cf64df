"""`facevlm bench chat-backends`: chat tokens/s of vLLM called directly, the gateway on the vLLM backend and
the gateway on the in-process backend, in one run, for the same model (+ LoRA adapter) and the same
requests, at several concurrencies; and the two ratios that matter: vLLM vs in-process, and the gateway's
overhead (gateway -> vLLM vs vLLM direct; target <= 5%).

It starts everything it measures and stops it by PID: the vLLM engine (facevlm.engine, the way the gateway
would start it: chat_vllm.start_engine), a gateway whose vLLM backend uses that engine (`chat.engine.url`),
then, with both stopped, a gateway with the in-process backend. Like for like:

- The direct request is the one the gateway forwards: the same messages, max_tokens, greedy decoding, and
  the face_search tool the gateway always offers, so vLLM's tool parser runs both ways and the difference
  is the gateway's own work (parsing, image decode + re-encode, SSE relaying, a second HTTP hop).
- The photo is cut to the face crop the model is trained on (the gateway's `crop: auto` view) once, here.
  The gateway is sent it as a client would, PNG, with `crop: never`; vLLM direct is sent the bytes the gateway
  forwards for it (chat_vllm.image_uri), so the engine decodes the same bytes both ways and the gateway's
  decoding and re-encoding count against the gateway. Each request's copy differs in one pixel, so no request
  is answered from vLLM's prefix or image cache of an earlier one.
- At each concurrency the direct and gateway paths take `--turns` turns each, alternately, so load from
  other processes on a shared machine hits both alike; figures pool the turns (tokens / summed wall time).
All answers are streamed (TTFT is reported); completion tokens come from the usage chunk.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from facevlm.errors import FacevlmError
from facevlm.index.loadtest import LoadResult, Sample, Summary, drive, summarize
from facevlm.serve.chat_bench import chat_body, run_gateway, sample_photos, stream_chat, warm_up
from facevlm.serve.config import RateLimitConfig, ServeConfig

DESCRIBE = "Describe this person's face."
OVERHEAD_TARGET = 0.05
PATHS = ("vLLM direct", "gateway -> vLLM", "gateway -> in-process")


def chat_model(model: str) -> tuple[dict[str, Any], str]:
    """ChatConfig fields for a FaceVLM run folder (or name under $FACEVLM_HOME/models) and the id requests
    name: a run with base/ and adapter/ is served as base (`<name>-base`) + LoRA `<name>`, both backends
    applying the LoRA per request; any other folder as itself (merged)."""
    from facevlm.vlm.build import resolve_source

    root = Path(resolve_source(model))
    name = root.name
    if (root / "base" / "config.json").is_file() and (root / "adapter" / "adapter_config.json").is_file():
        fields = {"model": str(root / "base"), "served_model_name": f"{name}-base"}
        return {**fields, "adapters": {name: str(root / "adapter")}}, name
    if not (root / "config.json").is_file():
        raise FacevlmError(f"--model {model}: {root} is neither a FaceVLM run (base/ + adapter/) nor a model folder")
    return {"model": str(root), "served_model_name": name, "adapters": {}}, name


def distinct_uris(image: Any, count: int, start: int, direct: bool) -> list[str]:
    """`count` data URIs of `image`, pixel (0, 0) of copy k set from the number start + k (< 2**24): PNG at
    PIL's default level, what a client uploads to the gateway; with `direct`, exactly what the gateway sends the
    engine for that picture (chat_vllm.image_uri), so vLLM decodes the same bytes both ways."""
    import numpy as np
    from PIL import Image

    from facevlm.image import to_data_uri
    from facevlm.serve.chat_vllm import image_uri

    base = np.asarray(image.convert("RGB")).copy()
    uris = []
    for n in range(start, start + count):
        base[0, 0] = (n & 255, (n >> 8) & 255, (n >> 16) & 255)
        copy = Image.fromarray(base)
        if direct:
            uris.append(image_uri(copy))
            continue
        buf = io.BytesIO()
        copy.save(buf, format="PNG")
        uris.append(to_data_uri(buf.getvalue(), "image/png"))
    return uris


class Requests:
    """Request bodies, every one with a photo copy of its own for the whole run."""

    def __init__(self, face: Any, model: str, question: str, max_tokens: int, sensitive: bool = False):
        from facevlm.data.search_call import tool_schema

        self.face, self.model, self.question, self.max_tokens = face, model, question, max_tokens
        self.tools = [tool_schema(allow_sensitive=sensitive)]  # what the gateway offers (chat_serving.model_tools)
        self.made = 0

    def take(self, count: int, direct: bool) -> list[dict[str, Any]]:
        uris = distinct_uris(self.face, count, self.made, direct)
        self.made += count
        extra = {"tools": self.tools, "tool_choice": "auto"} if direct else {}
        return [chat_body(self.model, uri, self.question, self.max_tokens, **extra) for uri in uris]


def run_level(url: str, bodies: list[dict[str, Any]], concurrency: int) -> LoadResult:
    async def ask(http: Any, i: int) -> Sample:
        return await stream_chat(http, bodies[i])

    return asyncio.run(drive(url, concurrency, ask, total=len(bodies), timeout=1800))


def pooled(results: list[LoadResult]) -> Summary:
    """One summary of several turns: samples pooled, wall times summed."""
    samples = [s for r in results for s in r.samples]
    return summarize(LoadResult(samples, sum(r.wall_s for r in results), results[0].clients))


def measure(
    urls: dict[str, str], requests: Requests, levels: list[int], per_level: dict[int, int], turns: int
) -> dict[tuple[str, int], list[LoadResult]]:
    """Each path in `urls`: a warm-up request, then at each level `turns` alternating turns (one result each)."""
    for path, url in urls.items():
        warm_up(url, requests.take(1, path == PATHS[0])[0])
    out: dict[tuple[str, int], list[LoadResult]] = {(path, c): [] for c in levels for path in urls}
    for c in levels:
        for turn in range(turns):
            for path, url in urls.items():
                click.echo(f"  {path}: concurrency {c}, turn {turn + 1}/{turns}, {per_level[c]} requests", err=True)
                out[(path, c)].append(run_level(url, requests.take(per_level[c], path == PATHS[0]), c))
    return out


def paired_overhead(direct: list[LoadResult], via: list[LoadResult]) -> tuple[float, float]:
    """Mean and 95% t half-width, over turns, of the overhead 1 - via/direct tokens/s of each pair of turns run
    back to back: the spread of the machine's speed from one minute to the next, which pooling hides (nan
    half-width with one turn)."""
    import numpy as np
    from scipy import stats

    values = []
    for d, v in zip(direct, via, strict=True):
        d_rate, v_rate = summarize(d).tokens_per_s, summarize(v).tokens_per_s
        values.append(1 - v_rate / d_rate if d_rate else float("nan"))
    if len(values) < 2:
        return float(values[0]), float("nan")
    half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
    return float(np.mean(values)), float(half)


def bench_config(recipe: str, fields: dict[str, Any], levels: list[int], max_tokens: int) -> ServeConfig:
    """The recipe's FaceCLIP and chat bounds with the benchmarked model, open on loopback (no keys, no rate
    limits, no UI), a queue and timeout that hold the largest level, images used as sent (crop: never)."""
    from facevlm.serve.config import load_serve_config

    cfg = load_serve_config(recipe)
    chat = cfg.chat
    if max_tokens > chat.max_tokens:
        raise FacevlmError(f"--max-tokens {max_tokens} exceeds the recipe's chat.max_tokens ({chat.max_tokens})")
    chat = dataclasses.replace(
        chat, **fields, crop="never", max_queue=max(chat.max_queue, *levels), timeout_s=max(chat.timeout_s, 1800.0)
    )
    return dataclasses.replace(
        cfg, chat=chat, api_keys=[], api_keys_env="", rate_limit=RateLimitConfig(), ui=False, detect=False, label=False
    )


def rows(turns: dict[tuple[str, int], list[LoadResult]], levels: list[int]) -> list[str]:
    results = {key: pooled(done) for key, done in turns.items()}
    out = [
        "| concurrency | path | requests | tokens/answer | completion tokens/s | p50 latency | p95 latency | TTFT p50 "
        "| 5xx / transport errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in levels:
        for path in PATHS:
            s = results[(path, c)]
            out.append(
                f"| {c} | {path} | {s.requests} | {s.tokens_per_request:.1f} | {s.tokens_per_s:.1f} | "
                f"{s.p50_ms:.0f} ms | {s.p95_ms:.0f} ms | {s.ttft_p50_ms:.0f} ms | "
                f"{s.server_errors} / {s.transport_errors} |"
            )
    out += [
        "",
        "| concurrency | vLLM ÷ in-process (tokens/s, both via the gateway) | gateway overhead, tokens/s "
        f"(target ≤ {OVERHEAD_TARGET:.0%}) | the same, mean of paired turns [95% CI] | gateway overhead, p50 latency |",
        "|---|---|---|---|---|",
    ]
    for c in levels:
        direct, via, local = (results[(path, c)] for path in PATHS)
        speedup = via.tokens_per_s / local.tokens_per_s if local.tokens_per_s else float("nan")
        overhead = 1 - via.tokens_per_s / direct.tokens_per_s if direct.tokens_per_s else float("nan")
        mean, half = paired_overhead(turns[(PATHS[0], c)], turns[(PATHS[1], c)])
        paired = f"{mean:+.1%} [{mean - half:+.1%}, {mean + half:+.1%}]" if half == half else f"{mean:+.1%} (one turn)"
        latency = via.p50_ms / direct.p50_ms - 1
        verdict = "met" if overhead <= OVERHEAD_TARGET else "missed"
        out.append(f"| {c} | {speedup:.2f}× | {overhead:+.1%} ({verdict}) | {paired} | {latency:+.1%} |")
    return out


@click.command("chat-backends", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--recipe", default="serve/cpu.yaml", show_default=True, help="FaceCLIP, chat bounds of the gateways.")
@click.option(
    "--model",
    default="facevlm-chat-small",
    show_default=True,
    help="FaceVLM run (base/ + adapter/: base + LoRA, requests to the LoRA) or merged model folder.",
)
@click.option("--concurrency", default="1,8,32", show_default=True, help="Comma-separated concurrent chats.")
@click.option("--rounds", type=int, default=2, show_default=True, help="Requests per client per turn.")
@click.option("--min-requests", type=int, default=8, show_default=True, help="At least this many per turn.")
@click.option("--turns", type=int, default=6, show_default=True, help="Alternating turns per path and level.")
@click.option("--max-tokens", type=int, default=64, show_default=True)
@click.option("--photo", default="obama.jpg", show_default=True, help="Sample photo (its face crop is sent).")
@click.option("--question", default=DESCRIBE, show_default=True)
def chat_backends_cmd(
    recipe: str,
    model: str,
    concurrency: str,
    rounds: int,
    min_requests: int,
    turns: int,
    max_tokens: int,
    photo: str,
    question: str,
) -> None:
    """vLLM direct vs gateway -> vLLM vs gateway -> in-process: tokens/s, latency, the gateway's overhead."""
    from facevlm.engine import launcher
    from facevlm.image import open_image
    from facevlm.serve.chat_serving import ModelView
    from facevlm.serve.chat_vllm import start_engine

    try:
        levels = sorted({int(c) for c in concurrency.split(",") if c.strip()})
    except ValueError:
        raise FacevlmError(f"--concurrency {concurrency!r}: expected comma-separated integers") from None
    if not levels or levels[0] < 1 or levels[-1] > 256 or min(rounds, min_requests, turns, max_tokens) < 1:
        raise FacevlmError("--concurrency 1..256; --rounds, --min-requests, --turns, --max-tokens >= 1")
    fields, request_id = chat_model(model)
    cfg = bench_config(recipe, fields, levels, max_tokens)
    face = ModelView("auto")(open_image(sample_photos((photo,))[0])).picture
    requests = Requests(face, request_id, question, max_tokens, cfg.sensitive_attributes)
    per_level = {c: max(min_requests, rounds * c) for c in levels}
    results: dict[tuple[str, int], list[LoadResult]] = {}
    with tempfile.TemporaryDirectory(prefix="facevlm-chat-backends-") as tmp:
        click.echo("starting the vLLM engine...", err=True)
        handle = start_engine(dataclasses.replace(cfg.chat, backend="vllm"))
        try:
            engine = dataclasses.replace(cfg.chat.engine, url=handle.url)
            via = dataclasses.replace(cfg, chat=dataclasses.replace(cfg.chat, backend="vllm", engine=engine))
            with run_gateway(via, Path(tmp), "gateway-vllm") as (gw, _):
                urls = {PATHS[0]: handle.url, PATHS[1]: f"{gw}/v1"}
                results.update(measure(urls, requests, levels, per_level, turns))
        finally:
            launcher.stop(handle.port)
        local = dataclasses.replace(cfg, chat=dataclasses.replace(cfg.chat, backend="in_process"))
        with run_gateway(local, Path(tmp), "gateway-in-process") as (gw, _):
            results.update(measure({PATHS[2]: f"{gw}/v1"}, requests, levels, per_level, turns))
    lora = f"base + LoRA `{request_id}`" if cfg.chat.adapters else "merged"
    click.echo(f"command: facevlm bench chat-backends {' '.join(sys.argv[3:])}".rstrip())
    click.echo(
        f"model {request_id} ({lora}); {photo} face crop {face.width}×{face.height}, to the gateway as PNG, to vLLM "
        f"as the gateway forwards it, one distinct pixel per request; max_tokens {max_tokens}, temperature 0, "
        f"streamed; requests per turn {per_level}, turns {turns}\n"
    )
    click.echo("\n".join(rows(results, levels)))
    failed = sum(s.server_errors + s.transport_errors for s in map(pooled, results.values()))
    if failed:
        raise FacevlmError(f"{failed} requests failed (5xx or transport errors); see the table")
