"""Result files: one JSON per (model, dataset, task) in CLIP_benchmark's layout plus our keys.

CLIP_benchmark writes {dataset, model, pretrained, task, metrics, language} (clip_benchmark/cli.py),
so its `build` command and the notebooks people already have read our files. Our additions sit
beside those keys, never inside `metrics`, so CLIP_benchmark tooling sees only point estimates.
NaN (a metric that cannot be measured on this set, e.g. TAR@FAR=1e-3 with < 1000 impostor pairs) is
written as null: strict JSON.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from facevlm.errors import FacevlmError

CLIP_BENCHMARK_KEYS: tuple[str, ...] = ("dataset", "model", "pretrained", "task", "metrics", "language")
OUR_KEYS: tuple[str, ...] = ("ci", "groups", "n", "suite", "seed", "fingerprint", "created_at", "headline", "details")


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python numbers, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def result_json(
    result: Any,
    model_name: str,
    pretrained: str,
    suite: str,
    seed: int,
    model_fp: str,
    dataset_fp: str,
    language: str = "en",
) -> dict[str, Any]:
    return clean(
        {
            "dataset": result.dataset,
            "model": model_name,
            "pretrained": pretrained,
            "task": result.task,
            "metrics": result.metrics,
            "language": language,
            "ci": result.ci,
            "groups": result.groups,
            "n": result.n,
            "suite": suite,
            "seed": seed,
            "fingerprint": {"model": model_fp, "dataset": dataset_fp},
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "headline": result.headline,
            "details": result.extra,
        }
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def write_json(out_dir: Path, name_parts: list[str], payload: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ("__".join(_slug(p) for p in name_parts) + ".json")
    path.write_text(json.dumps(clean(payload), indent=1, sort_keys=False) + "\n")
    return path


def read_results(paths: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(task results, paired comparisons) from run dirs and/or JSON files."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(p.glob("*.json"))
        elif p.is_file():
            files.append(p)
        else:
            raise FacevlmError(f"{p}: no such run directory or result file")
    results, pairs = [], []
    for f in files:
        try:
            data = json.loads(f.read_text())
        except json.JSONDecodeError as exc:
            raise FacevlmError(f"{f}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            continue
        if data.get("kind") == "paired":
            pairs.append(data)
        elif all(k in data for k in CLIP_BENCHMARK_KEYS):
            results.append(data)
    return results, pairs
