"""`facevlm bench search`: text->face query latency on exact galleries, in process and through the gateway
against the cost of its parts, and recall@10 / speed / build time / bytes per face of the FAISS indexes
against exact search at 1M vectors with the structure of real face embeddings, in both vector spaces
(facevlm.index.ann_bench). Prints Markdown rows for docs/benchmarks.md with the command that produced them;
nothing is asserted.

The gateway rows start `facevlm serve RECIPE` on a loopback port with a gallery of N faces and send
`/v1/faces/search` text queries one at a time; the parts are timed in this process on the same query
texts: FaceCLIP text encode (a cache miss, the same backend and threads as the gateway) + a raw
`IndexFlatIP` search of the same N vectors. Every query text is new (numbered), so neither the gateway's
text cache nor ours hides the encode; a last column gives the gateway on a repeated query (cache hit).

Latency gallery vectors are random unit vectors: latency of exact search depends on the count and
dimension, not on what the vectors mean. Recall does depend on it (random vectors have no neighbours
worth the name), so the ANN rows use vectors drawn from a model fitted on real embeddings
(facevlm.index.synthetic.IdentitySpread).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from facevlm.index.ann_bench import KINDS
from facevlm.index.loadtest import TEXTS, prepare, start_gateway
from facevlm.procs import free_port, peak_rss_mib, stop_process


def _pct(values: list[float]) -> tuple[float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def latency_rows(model: str, sizes: list[int], queries: int) -> list[str]:
    from facevlm.index.backends import BackendConfig
    from facevlm.index.embed import get_embedder
    from facevlm.index.search import Query, Searcher
    from facevlm.index.store import Gallery
    from facevlm.index.synthetic import fill_random

    emb = get_embedder(model)
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            gallery = Gallery.open(
                Path(tmp) / "g", model=emb.model, dim=emb.dim, fsync=False, backend=BackendConfig(index="flat")
            )
            fill_random(gallery, n)
            searcher = Searcher(gallery, emb)
            total, vector = [], []
            for i, text in enumerate(_unique_texts(queries + 5, f"{n}-")):  # new texts: no cache hit
                q = emb.texts([f"{text}, again"])
                t1 = time.perf_counter()
                searcher.gallery.search(q, 10)
                t2 = time.perf_counter()
                searcher.run(Query(text=text, top_k=10))
                t3 = time.perf_counter()
                if i >= 5:  # warm-up
                    vector.append((t2 - t1) * 1e3)
                    total.append((t3 - t2) * 1e3)
            gallery.close()
        (p50, p95), (v50, v95) = _pct(total), _pct(vector)
        rows.append(
            f"| text→face, exact (IndexFlatIP), {emb.dim}-d | {n:,} faces | p50 {p50:.2f} ms, p95 {p95:.2f} ms "
            f"end to end (text encode + search + metadata) | vector search alone p50 {v50:.2f} ms, p95 {v95:.2f} ms |"
        )
    return rows


def _unique_texts(n: int, tag: str = "") -> list[str]:
    """`n` query texts never asked before in this run (`tag` tells runs apart), so no text cache answers."""
    return [f"{TEXTS[i % len(TEXTS)]}, photo {tag}{i}" for i in range(n)]


def http_rows(model: str, recipe: str, sizes: list[int], queries: int) -> list[str]:
    """`/v1/faces/search` p50/p95 through a started gateway vs text encode + raw FAISS, per gallery size."""
    import faiss
    import httpx

    from facevlm.index.embed import get_embedder
    from facevlm.index.synthetic import unit_vectors

    emb = get_embedder(model)
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="facevlm-bench-") as tmp:
            galleries = Path(tmp)
            prepare(galleries, "bench", model, n)  # vectors: unit_vectors(n, dim, seed=0)
            index = faiss.IndexFlatIP(emb.dim)
            index.add(unit_vectors(n, emb.dim, seed=0))
            texts = _unique_texts(queries + 5, f"http-{n}-")
            parts, encode, http, hit = [], [], [], []
            port = free_port()
            proc = start_gateway(recipe, galleries, model, port, galleries / "gateway.log")
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:

                    def call(text: str) -> float:
                        t0 = time.perf_counter()
                        res = client.post("/v1/faces/search", json={"gallery": "bench", "query": {"text": text}})
                        res.raise_for_status()
                        return (time.perf_counter() - t0) * 1e3

                    for i, text in enumerate(texts):
                        t0 = time.perf_counter()
                        q = emb.texts([text])
                        t1 = time.perf_counter()
                        index.search(q, 10)
                        t2 = time.perf_counter()
                        took = call(text)
                        repeat = call(texts[0])
                        if i >= 5:  # warm-up
                            encode.append((t1 - t0) * 1e3)
                            parts.append((t2 - t0) * 1e3)
                            http.append(took)
                            hit.append(repeat)
                rss = peak_rss_mib(proc.pid)
            finally:
                stop_process(proc)
        (h50, h95), (p50, p95) = _pct(http), _pct(parts)
        rows.append(
            f"| {n:,} faces | {h50:.2f} / {h95:.2f} ms | {p50:.2f} / {p95:.2f} ms "
            f"(encode p50 {float(np.median(encode)):.2f}) | {h50 / p50:.2f} | {float(np.median(hit)):.2f} ms "
            f"| {rss:.0f} MiB |"
        )
    return rows


@click.command("search", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", default="facevlm-clip-small", show_default=True, help="FaceCLIP for the text queries.")
@click.option("--sizes", default="10000,100000", show_default=True, help="Gallery sizes for exact latency.")
@click.option("--queries", type=int, default=200, show_default=True, help="Timed text queries per size.")
@click.option("--ann-n", type=int, default=1_000_000, show_default=True, help="Vectors for the ANN rows (0 = skip).")
@click.option("--ann-spaces", default="identity,faceclip", show_default=True, help="Vector spaces for the ANN rows.")
@click.option("--ann-kinds", default=",".join(KINDS), show_default=True, help="Indexes for the ANN rows.")
@click.option("--ann-per-identity", type=float, default=10.0, show_default=True, help="Mean faces per person.")
@click.option("--ann-queries", type=int, default=300, show_default=True, help="Queries for recall@10.")
@click.option("--ann-timed", type=int, default=50, show_default=True, help="Of which timed one at a time.")
@click.option("--nprobe", default="16,32,64,128,256", show_default=True, help="IVF nprobe values to sweep.")
@click.option("--ef-search", default="32,64,128", show_default=True, help="HNSW efSearch values to sweep.")
@click.option("--identity-model", default=None, help="Identity model whose descriptors set the identity spread.")
@click.option(
    "--ann-spread-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the fitted spreads here and reuse them in later runs (skips embedding the faces again).",
)
@click.option("--threads", type=int, default=0, help="torch/FAISS threads, here and in the gateways (0 = default).")
@click.option("--gateway/--no-gateway", default=True, show_default=True, help="Also time searches through HTTP.")
@click.option("--recipe", default="serve/cpu.yaml", show_default=True, help="Gateway recipe for --gateway.")
def bench_search(
    model: str,
    sizes: str,
    queries: int,
    ann_n: int,
    ann_spaces: str,
    ann_kinds: str,
    ann_per_identity: float,
    ann_queries: int,
    ann_timed: int,
    nprobe: str,
    ef_search: str,
    identity_model: str | None,
    ann_spread_dir: Path | None,
    threads: int,
    gateway: bool,
    recipe: str,
) -> None:
    """Search latency (exact) at several gallery sizes; ANN recall@10, speed and memory vs exact at 1M."""
    if threads:
        import faiss
        import torch

        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # the started gateways: torch (torch_threads: 0) and FAISS
    click.echo(f"command: facevlm bench search {' '.join(sys.argv[3:])}".rstrip())
    counts = [int(s) for s in sizes.split(",") if s]
    if counts:
        click.echo("| query | gallery | latency | notes |\n|---|---|---|---|")
    for row in latency_rows(model, counts, queries):
        click.echo(row)
    if gateway and counts:
        click.echo(
            "\n| gallery | /v1/faces/search p50 / p95 (HTTP) | text encode + raw FAISS p50 / p95 | HTTP ÷ parts (p50) "
            "| HTTP, repeated query (cache hit) p50 | gateway peak RSS |\n|---|---|---|---|---|---|"
        )
        for row in http_rows(model, recipe, counts, queries):
            click.echo(row)
    if ann_n:
        ann_tables(
            ann_n,
            ann_spaces,
            ann_kinds,
            ann_per_identity,
            ann_queries,
            ann_timed,
            nprobe,
            ef_search,
            model,
            identity_model,
            ann_spread_dir,
        )


def ann_tables(
    n: int,
    spaces: str,
    kinds: str,
    per_identity: float,
    queries: int,
    timed: int,
    nprobe: str,
    ef_search: str,
    model: str,
    identity_model: str | None,
    spread_dir: Path | None = None,
) -> None:
    """The generator check and the ANN table (facevlm.index.ann_bench) for each space."""
    from facevlm.errors import FacevlmError
    from facevlm.index.ann_bench import SPACES, ann_rows, measured_spread

    chosen, wanted = [s for s in spaces.split(",") if s], [k for k in kinds.split(",") if k]
    bad = [s for s in chosen if s not in SPACES] + [k for k in wanted if k not in KINDS]
    if bad:
        raise FacevlmError(f"unknown ANN space/kind {', '.join(bad)}: spaces {SPACES}, kinds {KINDS}")
    fitted = {space: measured_spread(space, model, identity_model, spread_dir) for space in chosen}
    click.echo(
        "\n| embeddings | faces / identities | genuine distance p5 / p50 / p95 | impostor p1 / p5 / p50 | rank-1 |"
        "\n|---|---|---|---|---|"
    )
    for _, rows in fitted.values():
        for row in rows:
            click.echo(row)
    click.echo(
        "\n| space, N | index | setting | recall@10 | ms/query 1 thread | ms/query 2 threads | speed-up (1 thread) "
        "| build | bytes/face |\n|---|---|---|---|---|---|---|---|---|"
    )
    for space, (spread, _) in fitted.items():
        for row in ann_rows(
            spread,
            space,
            n,
            per_identity,
            queries,
            timed,
            [int(x) for x in nprobe.split(",") if x],
            [int(x) for x in ef_search.split(",") if x],
            wanted,
        ):
            click.echo(row)
