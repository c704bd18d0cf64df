"""The one home of the test suite's subprocess machinery, so every test starts, waits for and stops real
processes the same way:

- `free_port`, `serving`: a server (gateway, web UI) started as a subprocess, ready once a URL answers
  200, stopped by its PID (SIGTERM, then SIGKILL) when the block ends; the port and the stop are the load
  test's own (facevlm.index.loadtest), which starts and stops gateways the same way;
- `killed_midway`: a command killed with SIGKILL (it and everything it started) once it has committed
  part of its work to SQLite (`committed_rows`), to check what a crash leaves behind, and `finishes`:
  the same command run again to the end;
- `cli_engine`: the vLLM engine started and stopped through `facevlm engine start/stop`, as a user would.

Test modules import from here (`from processes import serving`; tests/ is on sys.path through its conftest).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from facevlm.procs import free_port, stop_process

__all__ = ["CliEngine", "cli_engine", "committed_rows", "finishes", "free_port", "killed_midway", "serving"]
FACEVLM = [sys.executable, "-m", "facevlm.cli"]


@contextmanager
def serving(
    cmd: list[str], ready_url: str, log: Path, env: dict[str, str], timeout: float, what: str
) -> Iterator[subprocess.Popen]:
    """Run `cmd` (output to `log`) until the block ends, then stop it by its PID (SIGTERM, then SIGKILL
    after 30 s); the block starts once `ready_url` answers 200. The test fails with the log's tail, naming
    `what`, when the process exits or `timeout` seconds pass first."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(ready_url, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{what} did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
            yield proc
        finally:
            stop_process(proc)


def committed_rows(db: Path, table: str) -> int:
    """The rows of `table` another process has committed to the SQLite file `db` so far (0 while the
    file or the table does not exist yet, or a writer holds the lock)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
    except sqlite3.OperationalError:
        return 0
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def killed_midway(cmd: list[str], db: Path, table: str, at_least: int, what: str) -> None:
    """Start `cmd` in a session of its own and SIGKILL the whole session (the process and anything it
    started, e.g. Milvus Lite's server) once it has committed `at_least` rows of `table` to `db`. Fails
    (with its stderr) when the command ends first: the crash under test never happened."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while committed_rows(db, table) < at_least and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"{what} ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def finishes(cmd: list[str]) -> str:
    """Run `cmd` again to the end, as a user would after the crash: its stdout (fails with its stderr)."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@dataclass
class CliEngine:
    """A running engine: its recorded handle, the PIDs of its process tree when it was up, and (after the
    block) what `facevlm engine stop` printed."""

    handle: Any  # facevlm.engine.launcher.EngineHandle
    tree: list[int]
    stopped: str = ""

    def chat(self, model: str, content: str | list[dict[str, Any]], max_tokens: int) -> dict[str, Any]:
        """One greedy completion of a one-message chat from the engine's OpenAI API: the reply's JSON."""
        messages = [{"role": "user", "content": content}]
        body = {"model": model, "max_tokens": max_tokens, "temperature": 0, "messages": messages}
        return httpx.post(f"{self.handle.url}/chat/completions", timeout=120, json=body).json()


@contextmanager
def cli_engine(model: Path, name: str, max_model_len: int, lora: Path) -> Iterator[CliEngine]:
    """`facevlm engine start --model … --port 0 --lora faces=…` through the CLI, in the $FACEVLM_HOME the
    test set (launcher.status() in the test process reads the same record); `facevlm engine stop` when the
    block ends. The adapter is served as model `faces` on top of `name`."""
    import psutil

    from facevlm.engine import launcher

    env = {**os.environ}
    cmd = [*FACEVLM, "engine", "start", "--model", str(model), "--port", "0", "--served-model-name", name]
    cmd += ["--max-model-len", str(max_model_len), "--lora", f"faces={lora}"]
    started = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=580)
    assert started.returncode == 0, started.stderr[-3000:]
    running = None
    try:
        (handle,) = launcher.status()
        tree = [handle.pid] + [p.pid for p in psutil.Process(handle.pid).children(recursive=True)]
        running = CliEngine(handle, tree)
        yield running
    finally:
        stop = [*FACEVLM, "engine", "stop"]
        stopped = subprocess.run(stop, env=env, capture_output=True, text=True, timeout=60)
        if running is not None:
            running.stopped = stopped.stdout
