"""The run folder's summary: metrics.json (first/last/min loss, speed) and loss_curve.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_report(run_dir: str | Path) -> dict[str, Any]:
    """Summarise metrics.jsonl into metrics.json and plot the loss curve (headless matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    summary: dict[str, Any] = {"steps": rows[-1]["step"] if rows else 0}
    if rows:
        losses = [r["loss"] for r in rows]
        summary.update(
            first_loss=losses[0],
            last_loss=losses[-1],
            min_loss=min(losses),
            samples_per_s=rows[-1]["samples_per_s"],
            elapsed_s=rows[-1]["elapsed_s"],
            logit_scale=rows[-1]["logit_scale"],
        )
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        ax.plot([r["step"] for r in rows], losses, marker=".")
        ax.set_xlabel("step")
        ax.set_ylabel("contrastive loss")
        ax.set_title(run_dir.name)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(run_dir / "loss_curve.png")
        plt.close(fig)
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    return summary
