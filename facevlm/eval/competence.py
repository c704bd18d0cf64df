"""`facevlm eval competence`: which attributes a chat model may answer, measured on real labelled faces.

The product rule (docs/vlm.md "When the model is unsure"): a chat model's answer about an attribute is
shown only where the model beats the majority guess on hand-labelled real faces; elsewhere the gateway
says it is unsure instead (facevlm.serve.chat_competence). This module turns the benchmark's evidence
into that decision and stores it with the model, as `facevlm eval calibrate` does for FaceCLIP:

    facevlm eval run eval/real.yaml --tasks vqa --out runs/real-vqa
    facevlm eval competence runs/real-vqa        # -> <model folder>/competence.json

The evidence is the suite's paired comparison (`paired: {a: majority, b: facevlm-chat, tasks: [vqa]}`):
per question type, the bootstrap CI of (model − majority) accuracy on the SAME questions. An attribute is
trusted only when that CI's lower bound is above 0: a point estimate above the majority on 85 faces is
not evidence (docs/benchmarks.md shows how wide those intervals are). Attributes the real dev split does
not label have no evidence and are never trusted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from facevlm.errors import FacevlmError
from facevlm.eval.output import read_results
from facevlm.eval.tasks.vqa import concept_of

FILE = "competence.json"
VERSION = 1
RULE = "paired 95% bootstrap CI of (model - baseline) accuracy entirely above 0, per question type"


def competence_table(
    run_dirs: list[Path], model: str, baseline: str = "majority", dataset: str = "", task: str = "vqa"
) -> dict[str, Any]:
    """The competence table of `model` from the paired comparison `baseline` vs `model` in `run_dirs`."""
    results, pairs = read_results(run_dirs)
    found = [
        p
        for p in pairs
        if p.get("task") == task
        and p.get("model_a") == baseline
        and p.get("model_b") == model
        and (not dataset or p.get("dataset") == dataset)
    ]
    if not found:
        raise FacevlmError(
            f"no paired comparison {baseline} vs {model} on task {task} in {', '.join(map(str, run_dirs))}; "
            f"the suite needs `paired: [{{a: {baseline}, b: {model}, tasks: [{task}]}}]`"
        )
    if len({p["dataset"] for p in found}) > 1:
        names = ", ".join(sorted({p["dataset"] for p in found}))
        raise FacevlmError(f"paired comparisons on several datasets ({names}): choose one with --dataset")
    pair = found[-1]
    source = next((r for r in results if (r["model"], r["dataset"], r["task"]) == (model, pair["dataset"], task)), None)
    concepts: dict[str, Any] = {}
    head = pair.get("headline") or "accuracy"
    for key, diff in pair["diff"].items():
        if not key.startswith(head + "/") or diff is None:
            continue
        qtype = key.split("/", 1)[1]
        concept = concept_of(qtype)
        low, high = pair["ci"][key]
        if concept is None or low is None:
            continue
        concepts[concept] = {
            "question_type": qtype,
            "accuracy": pair["b"][key],
            "baseline": pair["a"][key],
            "diff": diff,
            "ci": [low, high],
            "trusted": bool(low > 0),
        }
    if not concepts:
        raise FacevlmError(f"the paired comparison {baseline} vs {model} has no per-question-type {head}")
    return {
        "version": VERSION,
        "model": model,
        "model_path": (source or {}).get("pretrained", ""),
        "baseline": baseline,
        "dataset": pair["dataset"],
        "task": task,
        "suite": pair.get("suite", ""),
        "n": pair.get("n"),
        "rule": RULE,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "concepts": dict(sorted(concepts.items())),
    }


def write_table(table: dict[str, Any], out: Path | None = None) -> Path:
    """Write beside the model the gateway loads (`model_path` of the scored result) unless `out` is given."""
    if out is None:
        folder = Path(table.get("model_path") or "")
        if not table.get("model_path") or not folder.is_dir():
            raise FacevlmError(
                f"the result does not name a local model folder ({table.get('model_path')!r}); pass --out"
            )
        out = folder / FILE
    elif out.is_dir():
        out = out / FILE
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text(json.dumps(table, indent=1) + "\n")
    tmp.replace(out)
    return out


def summary_lines(table: dict[str, Any]) -> list[str]:
    lines = [f"{table['model']} vs {table['baseline']} on {table['dataset']} ({table['task']}, n={table['n']}):"]
    for concept, row in table["concepts"].items():
        low, high = row["ci"]
        verdict = "answers" if row["trusted"] else "unsure"
        lines.append(
            f"  {concept:18s} {row['accuracy']:.3f} vs {row['baseline']:.3f}  diff {row['diff']:+.3f} "
            f"[{low:+.3f}, {high:+.3f}]  -> {verdict}"
        )
    return lines
