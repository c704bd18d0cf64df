"""`facevlm bench load`: concurrent search clients against a gateway on 127.0.0.1.

By default it builds a gallery of `--faces` vector-only faces (random unit vectors in the served model's
dimension; search cost does not depend on what they depict), starts `facevlm serve RECIPE` on a free
loopback port with that gallery, runs `--clients` concurrent clients for `--duration` seconds (a mix of
text, face-id and composed queries), stops the gateway by PID and prints a Markdown row. `--url` targets
an already running gateway instead (its gallery must exist). Only loopback addresses are accepted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import click
import numpy as np

from facevlm.errors import FacevlmError

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, MiB; NaN where /proc does not say."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def stop_gateway(proc: subprocess.Popen) -> None:
    """SIGTERM by PID, SIGKILL after 30 s."""
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)


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


def start_gateway(recipe: str, galleries: Path, model: str, port: int, log: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "facevlm.cli",
        "serve",
        recipe,
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--galleries-dir",
        str(galleries),
        "--model",
        model,
    ]
    proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise FacevlmError(f"gateway exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    raise FacevlmError(f"gateway did not become healthy in 300 s; see {log}")


async def run_clients(
    url: str, gallery: str, clients: int, duration: float, key: str | None, max_face_id: int, fresh: bool = False
) -> tuple[list[float], Counter]:
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    latencies: list[float] = []
    statuses: Counter = Counter()
    stop = time.monotonic() + duration
    rng = np.random.default_rng(0)

    def body(i: int) -> dict:
        kind = i % 4
        if kind == 3 and max_face_id:  # a quarter face->face / composed queries
            face = {"face_id": str(int(rng.integers(1, max_face_id + 1)))}
            return {"gallery": gallery, "query": {"face": face, "edit": "smiling"} if i % 8 == 7 else {"face": face}}
        text = f"{TEXTS[i % len(TEXTS)]}, photo {i}" if fresh else TEXTS[i % len(TEXTS)]  # fresh: no cache hit
        return {"gallery": gallery, "query": {"text": text}, "top_k": 10}

    async def client(n: int, http: httpx.AsyncClient) -> None:
        i = n
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                res = await http.post("/v1/faces/search", json=body(i))
                statuses[res.status_code] += 1
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
                continue
            latencies.append((time.perf_counter() - t0) * 1e3)
            i += clients

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(n, http) for n in range(clients)))
    return latencies, statuses


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
    elif urlparse(url).hostname not in LOOPBACK:
        raise FacevlmError(f"--url {url}: load tests only target 127.0.0.1/localhost")
    try:
        click.echo(f"{clients} clients for {duration:.0f} s against {url} ...", err=True)
        t0 = time.monotonic()
        lat, statuses = asyncio.run(run_clients(url, gallery, clients, duration, api_key, faces, fresh_texts))
        wall = time.monotonic() - t0
        rss = peak_rss_mib(proc.pid) if proc is not None else float("nan")
    finally:
        if proc is not None:
            stop_gateway(proc)
        if tmp is not None:
            tmp.cleanup()
    five = sum(n for s, n in statuses.items() if isinstance(s, int) and s >= 500)
    p50, p95, p99 = (float(np.percentile(lat, q)) if lat else float("nan") for q in (50, 95, 99))
    click.echo(f"command: facevlm bench load {' '.join(sys.argv[3:])}".rstrip())
    click.echo(
        "| clients | gallery | requests | req/s | p50 | p95 | p99 | 5xx | statuses | gateway peak RSS |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    click.echo(
        f"| {clients} | {faces:,} faces | {len(lat)} | {len(lat) / wall:.1f} | {p50:.0f} ms | {p95:.0f} ms | "
        f"{p99:.0f} ms | {five} | {dict(statuses)} | {rss:.0f} MiB |"
    )
    if five:
        raise FacevlmError(f"{five} responses were 5xx")
