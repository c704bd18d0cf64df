"""The chat benches (`facevlm bench chat-load`, `facevlm bench chat-backends`) and the load machinery they
share with `facevlm bench load` (facevlm.index.loadtest): the statistics as unit tests, then short real
runs against gateways started from a recipe with the tiny FaceVLM (in process; and on the vLLM engine)."""

from __future__ import annotations

import asyncio
import base64
import io
import math
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from chat_fixtures import serve_config, tiny_chat
from click.testing import CliRunner
from PIL import Image

from facevlm.errors import FacevlmError
from facevlm.index.loadtest import LoadResult, Sample, drive, percentiles, summarize
from facevlm.serve.chat_bench import chat_body, chat_load_cmd, stream_error_label, write_recipe
from facevlm.serve.chat_bench_backends import PATHS, chat_backends_cmd, chat_model, distinct_uris, pooled, rows
from facevlm.serve.chat_vllm import image_uri
from facevlm.serve.config import load_serve_config
from facevlm.serve.errors import error_body


def test_percentiles_interpolate_and_are_nan_without_values() -> None:
    assert percentiles([10.0, 20.0, 30.0, 40.0], (50, 100)) == (25.0, 40.0)
    assert all(math.isnan(v) for v in percentiles([], (50, 95)))


def test_summary_counts_429_apart_and_times_only_successes() -> None:
    samples = [
        Sample(200, latency_ms=100.0, ttft_ms=10.0, tokens=4),
        Sample(200, latency_ms=300.0, ttft_ms=30.0, tokens=6),
        Sample(429, latency_ms=1.0, retry_after=2.0),
        Sample(503, latency_ms=2.0),
        Sample(stream_error_label(error_body("took too long", 504, "timeout")["error"]), latency_ms=50.0),
        Sample(stream_error_label(error_body("bad image", 400, "invalid_image")["error"]), latency_ms=5.0),
        Sample("ReadTimeout", latency_ms=600_000.0),
    ]
    s = summarize(LoadResult(samples, wall_s=2.0, clients=3))
    assert (s.requests, s.ok, s.rate_limited, s.server_errors, s.transport_errors) == (6, 2, 1, 2, 1)
    assert (s.p50_ms, s.ttft_p50_ms, s.tokens, s.tokens_per_s, s.requests_per_s) == (200.0, 20.0, 10, 5.0, 3.0)
    assert s.tokens_per_request == 5.0
    assert s.statuses == {
        "200": 2,
        "429": 1,
        "503": 1,
        "ReadTimeout": 1,
        "stream invalid_request_error:invalid_image": 1,
        "stream server_error:timeout": 1,
    }
    # vLLM's own error events name the type differently
    assert Sample(stream_error_label({"type": "InternalServerError", "code": 500})).server_error
    assert not Sample(stream_error_label({"type": "BadRequestError", "code": 400})).server_error


def test_drive_hands_out_each_request_once_and_waits_out_429s() -> None:
    seen: list[int] = []

    async def fine(http: httpx.AsyncClient, i: int) -> Sample:
        seen.append(i)
        await asyncio.sleep(0)
        return Sample(200)

    done = asyncio.run(drive("http://127.0.0.1:9", 3, fine, total=10))
    assert sorted(seen) == list(range(10)) and len(done.samples) == 10
    assert all(s.latency_ms is not None and s.latency_ms >= 0 for s in done.samples)

    async def busy(http: httpx.AsyncClient, i: int) -> Sample:
        return Sample(429, retry_after=3600.0)  # the wait is cut at the deadline: one request per client

    assert len(asyncio.run(drive("http://127.0.0.1:9", 4, busy, duration=0.3)).samples) == 4

    async def refused(http: httpx.AsyncClient, i: int) -> Sample:
        return Sample((await http.get("/")).status_code)  # port 9 on loopback: nothing listens

    statuses = summarize(asyncio.run(drive("http://127.0.0.1:9", 1, refused, total=2))).statuses
    assert statuses == {"ConnectError": 2}
    with pytest.raises(FacevlmError):
        asyncio.run(drive("http://127.0.0.1:9", 1, fine))


def test_pooled_turns_and_the_ratio_rows() -> None:
    def turn(tokens: int, wall: float, latency: float) -> LoadResult:
        return LoadResult([Sample(200, latency_ms=latency, ttft_ms=latency / 2, tokens=tokens)], wall, 1)

    direct = [turn(100, 1.0, 1000.0), turn(100, 1.0, 1000.0)]  # 100 tokens/s
    assert (pooled(direct).ok, pooled(direct).wall_s, pooled(direct).tokens_per_s) == (2, 2.0, 100.0)
    via = [turn(90, 1.0, 1100.0), turn(94, 1.0, 1100.0)]  # 10% and 6% slower: 8% pooled
    local = [turn(45, 1.0, 2000.0), turn(47, 1.0, 2000.0)]
    table = rows({(PATHS[0], 1): direct, (PATHS[1], 1): via, (PATHS[2], 1): local}, [1])
    # paired: mean 8%, sd 2.83% over 2 turns, t(0.975, 1) = 12.71: half-width 25.4%
    assert table[-1] == "| 1 | 2.00× | +8.0% (missed) | +8.0% [-17.4%, +33.4%] | +10.0% |"
    assert "| 1 | gateway -> in-process | 2 | 46.0 | 46.0 | 2000 ms |" in "\n".join(table)
    one = rows({(PATHS[0], 1): direct[:1], (PATHS[1], 1): via[:1], (PATHS[2], 1): local[:1]}, [1])
    assert one[-1] == "| 1 | 2.00× | +10.0% (missed) | +10.0% (one turn) | +10.0% |"


def test_each_request_gets_its_own_copy_of_the_photo() -> None:
    face = Image.new("RGB", (8, 6), (200, 100, 50))
    for direct, mime in ((False, "image/png"), (True, "image/bmp")):
        uris = distinct_uris(face, 3, start=257, direct=direct)
        assert len(set(uris)) == 3 and all(u.startswith(f"data:{mime};base64,") for u in uris)
        arrays = [np.array(Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1])))) for u in uris]
        for k, arr in enumerate(arrays):
            assert arr[0, 0].tolist() == [(257 + k) & 255, 1, 0]
            arr[0, 0] = (200, 100, 50)
            assert (arr == np.asarray(face)).all()  # nothing else changed (both are lossless)
    assert distinct_uris(face, 1, 9, direct=True) == [image_uri(Image.fromarray(arrays_of(face, 9)))]
    body = chat_body("m", uris[0], "q?", 8, tools=[])
    assert body["stream"] and body["stream_options"] == {"include_usage": True} and body["tools"] == []


def arrays_of(face: Image.Image, n: int) -> np.ndarray:
    arr = np.asarray(face).copy()
    arr[0, 0] = (n & 255, (n >> 8) & 255, (n >> 16) & 255)
    return arr


def test_chat_model_serves_a_run_as_base_plus_lora(tmp_path: Path) -> None:
    run = tmp_path / "my-run"
    for folder, name in ((run, "config.json"), (run / "base", "config.json"), (run / "adapter", "adapter_config.json")):
        folder.mkdir(exist_ok=True)
        (folder / name).write_text("{}")
    fields, request_id = chat_model(str(run))
    assert request_id == "my-run" and fields["served_model_name"] == "my-run-base"
    assert fields["model"] == str(run / "base") and fields["adapters"] == {"my-run": str(run / "adapter")}
    (run / "adapter" / "adapter_config.json").unlink()
    assert chat_model(str(run)) == ({"model": str(run), "served_model_name": "my-run", "adapters": {}}, "my-run")
    with pytest.raises(FacevlmError, match="neither"):
        chat_model(str(tmp_path))


def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $FACEVLM_HOME (for the started servers' PID records) with the fetched assets."""
    from facevlm import paths

    home = tmp_path / "home"
    home.mkdir()
    (home / "assets").symlink_to(paths.assets_dir(), target_is_directory=True)
    monkeypatch.setenv("FACEVLM_HOME", str(home))
    return home


def _table(output: str, first_cell: str) -> list[list[str]]:
    lines = [line for line in output.splitlines() if line.startswith(first_cell)]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


@pytest.mark.slow
def test_chat_load_against_a_started_gateway(tmp_path, monkeypatch, serve_model, tiny_vlm, assets_home) -> None:
    home = _home(tmp_path, monkeypatch)
    recipe = write_recipe(serve_config(tmp_path, serve_model, tiny_chat(tiny_vlm)), tmp_path / "serve.yaml")
    assert load_serve_config(recipe).keys()  # the bench finds the key in the recipe
    args = ["--recipe", str(recipe), "--clients", "2", "--duration", "3", "--max-tokens", "4", "--photo", "obama.jpg"]
    result = CliRunner().invoke(chat_load_cmd, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    (row,) = _table(result.output, "| in_process")
    backend, clients, duration, requests, ok, limited, five, transport, *figures, rss = row
    assert (backend, clients, duration, five, transport, limited) == ("in_process", "2", "3 s", "0", "0", "0")
    assert int(requests) == int(ok) >= 2
    req_s, p50, p95, ttft50, ttft95, tokens_s, per_answer = figures
    assert all(not v.startswith("nan") for v in (p50, p95, ttft50, ttft95, rss)), row
    assert float(tokens_s) > 0 and 1 <= float(per_answer) <= 4
    # stopped by PID (the record `facevlm serve` leaves behind when SIGTERM ends it names a process gone)
    assert not any(psutil.pid_exists(int(p.read_text())) for p in (home / "run").glob("gateway-*.pid"))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_chat_backends_smoke_on_the_tiny_engine(tmp_path, monkeypatch, serve_model, tiny_vlm, assets_home) -> None:
    from facevlm.engine import launcher

    _home(tmp_path, monkeypatch)
    recipe = write_recipe(serve_config(tmp_path, serve_model, tiny_chat(tiny_vlm)), tmp_path / "serve.yaml")
    args = ["--recipe", str(recipe), "--model", str(tiny_vlm["sft"]), "--concurrency", "1,2", "--rounds", "1"]
    args += ["--min-requests", "2", "--turns", "1", "--max-tokens", "4"]
    result = CliRunner().invoke(chat_backends_cmd, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    measured = _table(result.output, "| 1 |") + _table(result.output, "| 2 |")
    paths = [r[1] for r in measured if len(r) == 9]
    assert sorted(paths) == sorted(PATHS * 2)
    for row in (r for r in measured if len(r) == 9):
        assert row[2] == "2" and row[-1] == "0 / 0" and float(row[4]) > 0, row
    per_answer = {(r[0], r[1]): r[3] for r in measured if len(r) == 9}
    for c in ("1", "2"):  # the same requests, greedy, the same engine: the same answers
        assert per_answer[(c, PATHS[0])] == per_answer[(c, PATHS[1])]
    ratios = [r for r in measured if len(r) == 5]
    assert len(ratios) == 2 and all(r[1].endswith("×") and "%" in r[2] and "one turn" in r[3] for r in ratios)
    assert launcher.status() == []  # the engine was stopped
