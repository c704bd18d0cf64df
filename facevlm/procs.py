"""Child processes the benchmarks and launchers start and stop by PID: a free port to give them, their peak
memory, and a stop that cannot hang. One place, so the engine launcher, the load tests and the test
session's servers handle processes the same way."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path


def worker_context():
    """The multiprocessing context for worker pools: a fork server where there is one, else spawn. Never
    "fork": a parent that already ran OpenCV or OpenMP code holds their thread pools' locks, and forked
    children deadlock on them. A fork server starts workers from a clean single-threaded process."""
    import multiprocessing as mp

    return mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` right now (the caller binds it next; a short race, fine for one machine)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, MiB; NaN where /proc does not say."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def stop_process(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM by PID, SIGKILL after `timeout_s` (a gateway that started an engine stops it on SIGTERM)."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
