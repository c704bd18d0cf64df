"""`facevlm bench search`: text->face query latency on exact galleries, in process and through the gateway
against the cost of its parts, and recall@10 of the approximate FAISS indexes (IVF, HNSW) against exact
search at 1M vectors. Prints Markdown rows for docs/benchmarks.md with the command that produced them;
nothing is asserted.

The gateway rows start `facevlm serve RECIPE` on a loopback port with a gallery of N faces and send
`/v1/faces/search` text queries one at a time; the parts are timed in this process on the same query
texts: FaceCLIP text encode (a cache miss, the same backend and threads as the gateway) + a raw
`IndexFlatIP` search of the same N vectors. Every query text is new (numbered), so neither the gateway's
text cache nor ours hides the encode; a last column gives the gateway on a repeated query (cache hit).

Gallery vectors are random unit vectors: latency depends on the count and dimension, not on what the
vectors mean. Random data is also the hardest case for ANN recall (no cluster structure), so the
recall rows are a lower bound for real face embeddings.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from facevlm.index.loadtest import TEXTS, free_port, peak_rss_mib, prepare, start_gateway, stop_gateway


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


def recall_rows(n: int, dim: int, queries: int, nprobes: list[int], efs: list[int]) -> list[str]:
    import faiss

    from facevlm.index.backends import BackendConfig
    from facevlm.index.backends.faiss_backend import build_index
    from facevlm.index.synthetic import unit_vectors

    base = unit_vectors(n, dim, seed=1)
    qs = unit_vectors(queries, dim, seed=2)
    ids = np.arange(n, dtype=np.int64)
    exact = faiss.IndexFlatIP(dim)
    exact.add(base)
    t0 = time.perf_counter()
    _, truth = exact.search(qs, 10)
    exact_ms = (time.perf_counter() - t0) * 1e3 / queries
    rows = [f"| exact (IndexFlatIP) | {n:,} × {dim}-d | recall@10 1.000 | {exact_ms:.2f} ms/query (batch) | — |"]
    del exact
    for kind, knobs in (("ivf", nprobes), ("hnsw", efs)):
        cfg = BackendConfig(index=kind)
        t0 = time.perf_counter()
        index = build_index(kind, dim, cfg, train=base if kind == "ivf" else None)
        index.add_with_ids(base, ids)
        build_s = time.perf_counter() - t0
        for knob in knobs:
            if kind == "ivf":
                faiss.extract_index_ivf(index).nprobe = knob
                label = f"IVF{faiss.extract_index_ivf(index).nlist},Flat nprobe={knob}"
            else:
                faiss.downcast_index(index.index).hnsw.efSearch = knob
                label = f"HNSW{cfg.hnsw_m},Flat efSearch={knob}"
            t0 = time.perf_counter()
            _, got = index.search(qs, 10)
            ms = (time.perf_counter() - t0) * 1e3 / queries
            recall = np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got, truth)])
            rows.append(
                f"| {label} | {n:,} × {dim}-d | recall@10 {recall:.3f} | {ms:.2f} ms/query (batch) | "
                f"build {build_s:.0f} s |"
            )
        del index
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
                stop_gateway(proc)
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
@click.option("--ann-n", type=int, default=1_000_000, show_default=True, help="Vectors for the recall test (0 = skip).")
@click.option("--ann-dim", type=int, default=256, show_default=True)
@click.option("--ann-queries", type=int, default=1000, show_default=True)
@click.option("--nprobe", default="8,32,128", show_default=True, help="IVF nprobe values to sweep.")
@click.option("--ef-search", default="64,128,256", show_default=True, help="HNSW efSearch values to sweep.")
@click.option("--threads", type=int, default=0, help="torch/FAISS threads, here and in the gateways (0 = default).")
@click.option("--gateway/--no-gateway", default=True, show_default=True, help="Also time searches through HTTP.")
@click.option("--recipe", default="serve/cpu.yaml", show_default=True, help="Gateway recipe for --gateway.")
def bench_search(
    model: str,
    sizes: str,
    queries: int,
    ann_n: int,
    ann_dim: int,
    ann_queries: int,
    nprobe: str,
    ef_search: str,
    threads: int,
    gateway: bool,
    recipe: str,
) -> None:
    """Search latency (exact) at several gallery sizes and ANN recall@10 vs exact."""
    if threads:
        import faiss
        import torch

        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # the started gateways: torch (torch_threads: 0) and FAISS
    click.echo(f"command: facevlm bench search {' '.join(sys.argv[3:])}".rstrip())
    click.echo("| query | gallery | latency | notes |\n|---|---|---|---|")
    counts = [int(s) for s in sizes.split(",") if s]
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
        click.echo("\n| index | vectors | recall | speed | build |\n|---|---|---|---|---|")
        for row in recall_rows(
            ann_n, ann_dim, ann_queries, [int(x) for x in nprobe.split(",")], [int(x) for x in ef_search.split(",")]
        ):
            click.echo(row)
