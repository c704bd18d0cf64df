"""Start, find and stop the vLLM OpenAI server.

A started engine is recorded in `$FACEVLM_HOME/run/engine-<port>.json` (PID, its start time, process
group, port, model, log). `stop` ends exactly that process tree: the recorded PID is only trusted while its
start time still matches (PIDs get recycled), its descendants are collected with psutil before anything is
signalled (vLLM spawns worker processes), and the process group is swept last.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil

from facevlm.engine import vllm_platform
from facevlm.errors import FacevlmError
from facevlm.paths import run_dir
from facevlm.procs import free_port


@dataclass
class EngineConfig:
    model: str  # HF folder or hub id
    host: str = "127.0.0.1"
    port: int = 8000  # 0: pick a free port
    served_model_name: str | None = None
    loras: dict[str, str] = field(default_factory=dict)  # adapter name -> peft folder
    max_lora_rank: int = 16
    max_model_len: int | None = 2048
    kv_cache_gib: int = 1
    extra_args: list[str] = field(default_factory=list)
    startup_timeout_s: float = 300.0
    # vLLM turns the model's Hermes-style `<tool_call>{json}</tool_call>` (what FaceVLM is trained to write)
    # into OpenAI `tool_calls` when a request carries `tools`; None = tool calls stay in the text
    tool_call_parser: str | None = "hermes"


@dataclass
class EngineHandle:
    pid: int
    create_time: float
    pgid: int
    host: str
    port: int
    model: str
    served_model_name: str
    log: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


def _record_path(port: int) -> Path:
    return run_dir() / f"engine-{port}.json"


def build_command(cfg: EngineConfig, python: Path, port: int) -> list[str]:
    cmd = vllm_platform.server_command(python) + [
        "--model",
        cfg.model,
        "--host",
        cfg.host,
        "--port",
        str(port),
        "--served-model-name",
        cfg.served_model_name or Path(cfg.model).name or cfg.model,
    ]
    if cfg.max_model_len:
        cmd += ["--max-model-len", str(cfg.max_model_len)]
    if cfg.tool_call_parser:
        cmd += ["--enable-auto-tool-choice", "--tool-call-parser", cfg.tool_call_parser]
    if cfg.loras:
        cmd += ["--enable-lora", "--max-lora-rank", str(cfg.max_lora_rank), "--lora-modules"]
        cmd += [f"{name}={path}" for name, path in cfg.loras.items()]
    return cmd + vllm_platform.default_args() + list(cfg.extra_args)


def start(cfg: EngineConfig) -> EngineHandle:
    """Start the server, wait until `/v1/models` answers, record its PID. Raises FacevlmError with the
    tail of the server log if it exits or does not answer in time."""
    vllm_platform.check_model_dir(cfg.model)
    for name, path in cfg.loras.items():
        if not (Path(path) / "adapter_config.json").is_file():
            raise FacevlmError(f"LoRA {name}: {path} has no adapter_config.json (not a peft adapter folder)")
    python = vllm_platform.engine_python()
    port = cfg.port or free_port(cfg.host)
    existing = find(port)
    if existing is not None:
        raise FacevlmError(
            f"an engine (pid {existing.pid}) already serves port {port}; `facevlm engine stop --port {port}` first"
        )
    log_path = run_dir() / f"engine-{port}.log"
    cmd = build_command(cfg, python, port)
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=vllm_platform.server_env(kv_cache_gib=cfg.kv_cache_gib),
            start_new_session=True,
        )
    handle = EngineHandle(
        pid=proc.pid,
        create_time=psutil.Process(proc.pid).create_time(),
        pgid=proc.pid,
        host=cfg.host,
        port=port,
        model=cfg.model,
        served_model_name=cmd[cmd.index("--served-model-name") + 1],
        log=str(log_path),
    )
    _record_path(port).write_text(json.dumps(asdict(handle), indent=2))
    try:
        _wait_ready(handle, proc, cfg.startup_timeout_s)
    except BaseException:
        stop(port)
        raise
    return handle


def _wait_ready(handle: EngineHandle, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise FacevlmError(
                f"vLLM exited with code {proc.returncode} during start-up; log {handle.log}: {_log_tail(handle.log)}"
            )
        try:
            if httpx.get(f"{handle.url}/models", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    raise FacevlmError(f"vLLM did not answer /v1/models within {timeout_s:.0f}s; log {handle.log}")


def _log_tail(path: str, lines: int = 3) -> str:
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in text[-lines:])


def find(port: int) -> EngineHandle | None:
    """The engine recorded on `port`, if its process is still the one we started."""
    path = _record_path(port)
    if not path.is_file():
        return None
    handle = EngineHandle(**json.loads(path.read_text()))
    if not _alive(handle):
        path.unlink(missing_ok=True)
        return None
    return handle


def _alive(handle: EngineHandle) -> bool:
    try:
        proc = psutil.Process(handle.pid)
        return abs(proc.create_time() - handle.create_time) < 1e-3 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def status() -> list[EngineHandle]:
    handles = []
    for path in sorted(run_dir().glob("engine-*.json")):
        handle = find(int(path.stem.split("-", 1)[1]))
        if handle is not None:
            handles.append(handle)
    return handles


def stop(port: int, timeout_s: float = 20.0) -> bool:
    """End the engine's whole process tree (SIGTERM, then SIGKILL after `timeout_s`). False if none ran."""
    path = _record_path(port)
    if not path.is_file():
        return False
    handle = EngineHandle(**json.loads(path.read_text()))
    stopped = False
    if _alive(handle):
        root = psutil.Process(handle.pid)
        procs = [root] + root.children(recursive=True)
        for proc in procs:
            _signal(proc, signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=timeout_s)
        for proc in alive:
            _signal(proc, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=5)
        stopped = True
    try:  # stragglers that re-parented away but stayed in the engine's own session/process group
        os.killpg(handle.pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    path.unlink(missing_ok=True)
    return stopped


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        pass
