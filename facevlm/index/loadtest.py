"""`facevlm bench load`: concurrent search clients against a gateway on 127.0.0.1, and the load machinery
the chat benches share (facevlm.serve.chat_bench): `drive` runs N concurrent clients, each awaiting a
request function in a loop, for a duration or through a fixed number of requests; `summarize` turns their
`Sample`s into the figures every load row reports (status counts, 5xx apart from 429, latency and
time-to-first-token percentiles, completion tokens/s).

By default it builds a gallery of `--faces` vector-only faces (random unit vectors in the served model's
dimension; search cost does not depend on what they depict), starts `facevlm serve RECIPE` on a free
loopback port with that gallery, runs `--clients` concurrent clients for `--duration` seconds (a mix of
text, face-id and composed queries), stops the gateway by PID and prints a Markdown row. `--url` targets
an already running gateway instead (its gallery must exist). Only loopback addresses are accepted.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
import numpy as np

from facevlm.errors import FacevlmError
from facevlm.procs import free_port, peak_rss_mib, stop_process

LOOPBACK = ("127.0.0.1", "localhost", "::1")
TEXTS = [
    "a smiling woman with glasses",
    "a man with a beard",
    "a surprised child",
    "an old man wearing a hat",
    "a person with long blond hair",
    "a sad face",
    "a young person with short black hair",
    "a neutral face",
]
STREAM_SERVER_ERROR = "stream server_error"  # status label prefix of an error event inside a 200 stream


@dataclass
class Sample:
    """One request as a client saw it. `status`: the HTTP status, the transport error's class name, or
    (an error event inside a streamed 200) "stream TYPE:CODE". `latency_ms`: until the last byte (set by
    `drive`); `ttft_ms`: until the first content token (streams only); `tokens`: completion tokens."""

    status: int | str
    latency_ms: float | None = None
    ttft_ms: float | None = None
    tokens: int = 0
    retry_after: float | None = None  # a 429's Retry-After, seconds

    @property
    def ok(self) -> bool:
        return isinstance(self.status, int) and 200 <= self.status < 300

    @property
    def server_error(self) -> bool:
        """A 5xx, or a server-side error event in a stream that had begun with 200."""
        if isinstance(self.status, int):
            return self.status >= 500
        return self.status.startswith(STREAM_SERVER_ERROR)

    @property
    def transport_error(self) -> bool:
        """No HTTP answer at all (connection refused or reset, client timeout)."""
        return isinstance(self.status, str) and not self.status.startswith("stream ")


RequestFn = Callable[[Any, int], Awaitable[Sample]]  # (httpx.AsyncClient, request index) -> Sample


@dataclass
class LoadResult:
    samples: list[Sample]
    wall_s: float
    clients: int


@dataclass
class Summary:
    """The figures of one load row; latency percentiles are over successful requests only (a quick 429
    is no answer), NaN when there were none."""

    clients: int
    wall_s: float
    requests: int  # answered with an HTTP status (any)
    ok: int
    rate_limited: int  # 429: the server's rate limits or chat queue, not failures
    server_errors: int  # 5xx, and server error events inside streams
    transport_errors: int
    statuses: dict[str, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    tokens: int  # completion tokens of the successful requests
    requests_per_s: float
    tokens_per_s: float

    @property
    def tokens_per_request(self) -> float:
        return self.tokens / self.ok if self.ok else float("nan")


def percentiles(values: list[float], qs: tuple[float, ...]) -> tuple[float, ...]:
    """np.percentile of each q (linear interpolation); NaN for every q when there are no values."""
    if not values:
        return tuple(float("nan") for _ in qs)
    return tuple(float(v) for v in np.percentile(np.asarray(values, dtype=np.float64), qs))


def summarize(result: LoadResult) -> Summary:
    samples = result.samples
    ok = [s for s in samples if s.ok]
    p50, p95, p99 = percentiles([s.latency_ms for s in ok if s.latency_ms is not None], (50, 95, 99))
    t50, t95 = percentiles([s.ttft_ms for s in ok if s.ttft_ms is not None], (50, 95))
    tokens = sum(s.tokens for s in ok)
    answered = sum(1 for s in samples if not s.transport_error)
    wall = result.wall_s if result.wall_s > 0 else float("nan")
    return Summary(
        clients=result.clients,
        wall_s=result.wall_s,
        requests=answered,
        ok=len(ok),
        rate_limited=sum(1 for s in samples if s.status == 429),
        server_errors=sum(1 for s in samples if s.server_error),
        transport_errors=sum(1 for s in samples if s.transport_error),
        statuses={str(k): n for k, n in sorted(Counter(s.status for s in samples).items(), key=lambda kv: str(kv[0]))},
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        ttft_p50_ms=t50,
        ttft_p95_ms=t95,
        tokens=tokens,
        requests_per_s=answered / wall,
        tokens_per_s=tokens / wall,
    )


async def drive(
    url: str,
    clients: int,
    request: RequestFn,
    *,
    duration: float | None = None,
    total: int | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> LoadResult:
    """`clients` concurrent clients on one connection pool to `url`, each awaiting `request(http, i)` in a
    loop: until `duration` seconds have passed (client n sends indices n, n + clients, ...), or until
    `total` requests are done (indices 0..total-1 handed out in order). A 429 makes its client wait its
    Retry-After (1 s without one) as OpenAI's clients do (a wait past the deadline ends the client);
    transport errors are samples too. The latency of each sample is measured here, around the whole request."""
    import httpx

    if (duration is None) == (total is None):
        raise FacevlmError("drive: give exactly one of duration and total")
    samples: list[Sample] = []
    stop = float("inf")  # the deadline, set with the clock below (the pool's set-up is not part of it)
    shared = itertools.count()

    async def client(n: int, http: httpx.AsyncClient) -> None:
        for k in itertools.count():
            i = next(shared) if total is not None else n + k * clients
            if (total is not None and i >= total) or time.monotonic() >= stop:
                return
            t0 = time.perf_counter()
            try:
                sample = await request(http, i)
            except httpx.HTTPError as exc:
                sample = Sample(type(exc).__name__)
            sample.latency_ms = (time.perf_counter() - t0) * 1e3
            samples.append(sample)
            if sample.status == 429:
                wait = sample.retry_after or 1.0
                if time.monotonic() + wait >= stop:
                    return
                await asyncio.sleep(wait)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers or {}, timeout=timeout, limits=limits) as http:
        t0 = time.monotonic()  # one clock for the deadline and the wall time, started once the pool exists
        if duration is not None:
            stop = t0 + duration
        await asyncio.gather(*(client(n, http) for n in range(clients)))
    return LoadResult(samples, time.monotonic() - t0, clients)


def retry_after(response: Any) -> float | None:
    """A response's Retry-After in seconds (the delta-seconds form), else None."""
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


def check_loopback(url: str) -> None:
    if urlparse(url).hostname not in LOOPBACK:
        raise FacevlmError(f"--url {url}: load tests only target 127.0.0.1/localhost")


def prepare(galleries: Path, name: str, model: str, faces: int) -> None:
    from facevlm.index.embed import get_embedder
    from facevlm.index.store import Gallery
    from facevlm.index.synthetic import fill_random

    emb = get_embedder(model)
    gallery = Gallery.open(galleries / name, model=emb.model, dim=emb.dim, fsync=False)
    try:
        if gallery.count() < faces:
            fill_random(gallery, faces - gallery.count(), seed=gallery.count())
    finally:
        gallery.close()


def start_gateway(
    recipe: str | Path,
    galleries: Path | None,
    model: str | None,
    port: int,
    log: Path,
    timeout_s: float = 300.0,
) -> subprocess.Popen:
    """`facevlm serve RECIPE` on 127.0.0.1:`port` (galleries and FaceCLIP overridden unless None), once
    /healthz answers (after the lifespan: a managed chat engine included); its output goes to `log`."""
    import httpx

    cmd = [sys.executable, "-m", "facevlm.cli", "serve", str(recipe), "--port", str(port), "--host", "127.0.0.1"]
    cmd += ["--galleries-dir", str(galleries)] if galleries is not None else []
    cmd += ["--model", model] if model is not None else []
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise FacevlmError(f"gateway exited with {proc.returncode}: {log_tail(log)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_process(proc)
    raise FacevlmError(f"gateway did not become healthy in {timeout_s:.0f} s: {log_tail(log)}")


def log_tail(log: Path, lines: int = 3) -> str:
    """The last lines of a server log, on one line (the log may live in a folder about to be removed)."""
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"(no log at {log})"
    return " | ".join(line.strip() for line in text[-lines:])


async def run_clients(
    url: str, gallery: str, clients: int, duration: float, key: str | None, max_face_id: int, fresh: bool = False
) -> LoadResult:
    rng = np.random.default_rng(0)

    def body(i: int) -> dict:
        kind = i % 4
        if kind == 3 and max_face_id:  # a quarter face->face / composed queries
            face = {"face_id": str(int(rng.integers(1, max_face_id + 1)))}
            return {"gallery": gallery, "query": {"face": face, "edit": "smiling"} if i % 8 == 7 else {"face": face}}
        text = f"{TEXTS[i % len(TEXTS)]}, photo {i}" if fresh else TEXTS[i % len(TEXTS)]  # fresh: no cache hit
        return {"gallery": gallery, "query": {"text": text}, "top_k": 10}

    async def search(http: Any, i: int) -> Sample:
        res = await http.post("/v1/faces/search", json=body(i))
        return Sample(res.status_code, retry_after=retry_after(res) if res.status_code == 429 else None)

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return await drive(url, clients, search, duration=duration, headers=headers)


@click.command("load", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--recipe", default="serve/cpu.yaml", show_default=True, help="Gateway recipe to start.")
@click.option("--url", default=None, help="Use a running gateway (loopback only) instead of starting one.")
@click.option("--model", default="facevlm-clip-small", show_default=True, help="FaceCLIP of the started gateway.")
@click.option("--gallery", default="loadtest", show_default=True)
@click.option("--faces", type=int, default=10_000, show_default=True)
@click.option("--clients", type=int, default=50, show_default=True)
@click.option("--duration", type=float, default=60.0, show_default=True, help="Seconds of load.")
@click.option("--api-key", envvar="FACEVLM_API_KEY", default=None)
@click.option("--fresh-texts", is_flag=True, help="Number every text query, so the text cache never answers.")
def load_cmd(
    recipe: str,
    url: str | None,
    model: str,
    gallery: str,
    faces: int,
    clients: int,
    duration: float,
    api_key: str | None,
    fresh_texts: bool,
) -> None:
    """Concurrent search clients for DURATION s; reports requests/s, p50/p95/p99 and any 5xx."""
    if not 1 <= clients <= 1000 or not 0 < duration <= 3600:
        raise FacevlmError("--clients must be 1..1000 and --duration 0..3600 s")
    proc = None
    tmp = None
    if url is None:
        tmp = tempfile.TemporaryDirectory(prefix="facevlm-load-")
        galleries = Path(tmp.name)
        click.echo(f"building a {faces}-face gallery...", err=True)
        prepare(galleries, gallery, model, faces)
        port = free_port()
        proc = start_gateway(recipe, galleries, model, port, galleries / "gateway.log")
        url = f"http://127.0.0.1:{port}"
    else:
        check_loopback(url)
    try:
        click.echo(f"{clients} clients for {duration:.0f} s against {url} ...", err=True)
        s = summarize(asyncio.run(run_clients(url, gallery, clients, duration, api_key, faces, fresh_texts)))
        rss = peak_rss_mib(proc.pid) if proc is not None else float("nan")
    finally:
        if proc is not None:
            stop_process(proc)
        if tmp is not None:
            tmp.cleanup()
    click.echo(f"command: facevlm bench load {' '.join(sys.argv[3:])}".rstrip())
    click.echo(
        "| clients | gallery | requests | req/s | p50 | p95 | p99 | 5xx | statuses | gateway peak RSS |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    click.echo(
        f"| {clients} | {faces:,} faces | {s.requests} | {s.requests_per_s:.1f} | {s.p50_ms:.0f} ms | "
        f"{s.p95_ms:.0f} ms | {s.p99_ms:.0f} ms | {s.server_errors} | {s.statuses} | {rss:.0f} MiB |"
    )
    if s.server_errors:
        raise FacevlmError(f"{s.server_errors} responses were 5xx")
