"""scripts/step.sh: `make demo` prints each set-up step's time and a summary at the end."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

STEP = Path(__file__).resolve().parents[1] / "scripts" / "step.sh"


def _step(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACEVLM_HOME": str(home)}
    return subprocess.run([str(STEP), *args], env=env, capture_output=True, text=True, timeout=30)


def test_steps_are_timed_logged_and_summarised(tmp_path: Path) -> None:
    assert _step(tmp_path, "--reset").returncode == 0
    ok = _step(tmp_path, "sh", "-c", "echo hello; sleep 0.2")
    assert ok.returncode == 0 and ok.stdout == "hello\n"
    seconds = float(ok.stderr.split("]")[0].strip("[ s"))
    assert 0.2 <= seconds < 10
    failed = _step(tmp_path, "sh", "-c", "exit 3")
    assert failed.returncode == 3 and "(failed: exit 3)" in failed.stderr
    rows = (tmp_path / "run" / "steps.tsv").read_text().splitlines()
    assert [r.split("\t")[1] for r in rows] == ["sh -c echo hello; sleep 0.2", "sh -c exit 3"]
    total = sum(float(r.split("\t")[0]) for r in rows)
    summary = _step(tmp_path, "--summary").stdout.splitlines()
    assert summary[0].startswith("Set-up steps") and summary[-1].split() == [f"{total:.1f}", "total"]


def test_reset_starts_a_new_run(tmp_path: Path) -> None:
    _step(tmp_path, "true")
    _step(tmp_path, "--reset")
    assert _step(tmp_path, "--summary").stdout == ""
