"""`facevlm eval report`: merge result JSONs of one or more runs into a Markdown and an HTML report
with a leaderboard per (dataset, task), headline CIs and fairness gaps side by side, paired
comparisons, efficiency, and plots (recall@K curves, per-group bars with CIs, robustness curves)."""

from __future__ import annotations

import html
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from facevlm.eval.output import read_results

LOWER_IS_BETTER = re.compile(r"median_rank|ms_per")


def _fmt(v: Any, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _ci(ci: Any) -> str:
    return "" if not ci or ci[0] is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]"


def leaderboards(results: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[list[str], list[list[str]]]]:
    """(dataset, task) -> (header, rows), best first by the headline metric."""
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by_key[(r["dataset"], r["task"])].append(r)
    out = {}
    for key, rows in sorted(by_key.items()):
        headline = rows[0].get("headline") or next(iter(rows[0]["metrics"]), "")
        sign = 1 if LOWER_IS_BETTER.search(headline) else -1
        rows.sort(
            key=lambda r: (
                sign * (r["metrics"].get(headline) if r["metrics"].get(headline) is not None else -sign * float("inf"))
            )
        )
        group_attrs = sorted({a for r in rows for a in (r.get("groups") or {})})
        header = ["model", "pretrained", f"{headline} [95% CI]", "n", *[f"{a} gap [CI] / ratio" for a in group_attrs]]
        table = []
        for r in rows:
            line = [
                r["model"],
                str(r.get("pretrained", ""))[-40:],
                _fmt(r["metrics"].get(headline)) + _ci((r.get("ci") or {}).get(headline)),
                str(r.get("n", "")),
            ]
            for a in group_attrs:
                g = (r.get("groups") or {}).get(a)
                line.append("–" if not g else f"{_fmt(g['gap'])}{_ci(g['gap_ci'])} / {_fmt(g['ratio'], 2)}")
            table.append(line)
        out[key] = (header, table)
    return out


def paired_rows(pairs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["dataset", "task", "comparison", "metric", "difference [95% CI]", "P(diff <= 0)"]
    rows = []
    for p in pairs:
        h = p.get("headline")
        if h in (p.get("diff") or {}):
            rows.append(
                [
                    p["dataset"],
                    p["task"],
                    f"{p['model_b']} − {p['model_a']}",
                    h,
                    f"{_fmt(p['diff'][h], 3)}{_ci(p['ci'].get(h))}",
                    _fmt(p["p_diff_le_0"].get(h)),
                ]
            )
    return header, rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ---------------------------------------------------------------- plots
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_recall_at_k(results: list[dict[str, Any]], out: Path) -> list[Path]:
    files = []
    by_ds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if r["task"] == "zeroshot_retrieval":
            by_ds[r["dataset"]].append(r)
    for ds, rows in by_ds.items():
        plt = _plt()
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
        for ax, prefix in zip(axes, ("image_retrieval", "text_retrieval")):
            for r in rows:
                ks = sorted(int(k.split("@")[1]) for k in r["metrics"] if k.startswith(f"{prefix}_recall@"))
                ys = [r["metrics"][f"{prefix}_recall@{k}"] for k in ks]
                lo = [r["ci"][f"{prefix}_recall@{k}"][0] for k in ks]
                hi = [r["ci"][f"{prefix}_recall@{k}"][1] for k in ks]
                ax.plot(ks, ys, marker="o", label=r["model"])
                if None not in lo and None not in hi:
                    ax.fill_between(ks, lo, hi, alpha=0.15)
            ax.set_title(f"{ds}: {prefix.replace('_', ' ')}")
            ax.set_xlabel("K")
            ax.set_xscale("log")
        axes[0].set_ylabel("recall@K")
        axes[0].legend(fontsize=7)
        files.append(_save(fig, out / f"recall_at_k__{ds}.png"))
    return files


def plot_groups(results: list[dict[str, Any]], out: Path) -> list[Path]:
    """One figure per (dataset, task): a panel per group attribute, models side by side, CI whiskers."""
    import numpy as np

    files = []
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if r.get("groups"):
            by_key[(r["dataset"], r["task"])].append(r)
    for (ds, task), rows in sorted(by_key.items()):
        attrs = sorted({a for r in rows for a in r["groups"]})
        plt = _plt()
        fig, axes = plt.subplots(1, len(attrs), figsize=(4.2 * len(attrs), 3.4), squeeze=False)
        width = 0.8 / len(rows)
        for ax, attr in zip(axes[0], attrs):
            names = sorted({n for r in rows for n in (r["groups"].get(attr) or {}).get("values", {})})
            for m, r in enumerate(rows):
                g = r["groups"].get(attr)
                if not g:
                    continue
                vals = np.array([g["values"].get(n) if g["values"].get(n) is not None else np.nan for n in names])
                lo = np.array([(g["ci"].get(n) or [None])[0] for n in names], dtype=float)
                hi = np.array([(g["ci"].get(n) or [None, None])[1] for n in names], dtype=float)
                err = np.nan_to_num(np.stack([vals - lo, hi - vals]).clip(min=0))
                ax.bar(
                    np.arange(len(names)) + m * width,
                    np.nan_to_num(vals),
                    width,
                    yerr=err,
                    capsize=2,
                    label=f"{r['model']} (gap {_fmt(g['gap'])})",
                )
            ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, fontsize=7)
            ax.set_title(attr, fontsize=9)
            ax.set_ylabel(rows[0]["headline"], fontsize=7)
            ax.legend(fontsize=6)
        fig.suptitle(f"{ds} · {task}: per-group {rows[0]['headline']} (95% CI)", fontsize=9)
        files.append(_save(fig, out / f"groups__{ds}__{task}.png"))
    return files


def plot_robustness(results: list[dict[str, Any]], out: Path) -> list[Path]:
    files = []
    by_ds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if r["task"] == "robustness":
            by_ds[r["dataset"]].append(r)
    for ds, rows in by_ds.items():
        corruptions = rows[0].get("details", {}).get("corruptions", [])
        if not corruptions:
            continue
        plt = _plt()
        fig, axes = plt.subplots(1, len(corruptions), figsize=(3.2 * len(corruptions), 3), sharey=True, squeeze=False)
        for ax, c in zip(axes[0], corruptions):
            for r in rows:
                key = r["details"]["metric"]
                sev = [0] + list(r["details"]["severities"])
                ys = [r["metrics"].get(f"clean/{key}")] + [r["metrics"].get(f"{c}@{s}/{key}") for s in sev[1:]]
                ax.plot(sev, [y if y is not None else float("nan") for y in ys], marker="o", label=r["model"])
            ax.set_title(c)
            ax.set_xlabel("severity (0 = clean)")
        axes[0][0].set_ylabel(rows[0]["details"]["metric"], fontsize=8)
        axes[0][0].legend(fontsize=7)
        files.append(_save(fig, out / f"robustness__{ds}.png"))
    return files


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def write_report(run_dirs: list[Path], out: Path) -> Path:
    """Write report.md, report.html and plots/*.png under `out`; returns the Markdown path."""
    results, pairs = read_results([Path(p) for p in run_dirs])
    out.mkdir(parents=True, exist_ok=True)
    plots = out / "plots"
    figures = plot_recall_at_k(results, plots) + plot_groups(results, plots) + plot_robustness(results, plots)
    md = [
        "# facevlm benchmark report",
        "",
        f"Runs: {', '.join(str(p) for p in run_dirs)}",
        "",
        "Headline metric with its seeded bootstrap 95% CI; fairness columns: max−min gap of the headline "
        "across groups [CI] / min/max ratio (groups below the suite's min size are shown in plots only).",
        "",
    ]
    body = []
    for (ds, task), (header, rows) in leaderboards(results).items():
        md += [f"## {ds} · {task}", "", _md_table(header, rows), ""]
        body.append(f"<h2>{html.escape(ds)} · {html.escape(task)}</h2>{_html_table(header, rows)}")
    ph, prow = paired_rows(pairs)
    if prow:
        md += ["## Paired comparisons (same items, same resamples)", "", _md_table(ph, prow), ""]
        body.append(f"<h2>Paired comparisons</h2>{_html_table(ph, prow)}")
    if figures:
        md += ["## Plots", ""] + [f"![{f.stem}](plots/{f.name})" for f in figures] + [""]
        body.append("<h2>Plots</h2>" + "".join(f'<p><img src="plots/{f.name}" alt="{f.stem}"></p>' for f in figures))
    (out / "report.md").write_text("\n".join(md) + "\n")
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}img{max-width:100%}"
    )
    (out / "report.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>facevlm benchmark"
        f"</title><style>{style}</style></head><body><h1>facevlm benchmark report</h1>"
        + "".join(body)
        + "</body></html>\n"
    )
    return out / "report.md"
