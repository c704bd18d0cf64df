"""`facevlm eval …`: run benchmark suites, merge runs into reports, compare two result files."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("eval", context_settings={"help_option_names": ["-h", "--help"]})
def eval_group() -> None:
    """Benchmark harness: suites (eval/*.yaml) with bootstrap CIs, fairness gaps and reports."""


@eval_group.command("run")
@click.argument("suite_file", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Output directory (default $FACEVLM_HOME/eval/<suite>/<UTC time>).",
)
@click.option("--n-boot", type=int, default=None, help="Override the suite's bootstrap resamples.")
@click.option("--no-cache", is_flag=True, help="Recompute embeddings instead of using the cache.")
@click.option("--models", "only_models", default="", help="Comma-separated subset of the suite's models.")
@click.option("--datasets", "only_datasets", default="", help="Comma-separated subset of the suite's datasets.")
@click.option("--tasks", "only_tasks", default="", help="Comma-separated subset of the suite's tasks.")
def run_cmd(
    suite_file: str,
    out: str | None,
    n_boot: int | None,
    no_cache: bool,
    only_models: str,
    only_datasets: str,
    only_tasks: str,
) -> None:
    """Run every task of SUITE_FILE; writes one JSON per (model, dataset, task) and the report."""
    from facevlm.eval.suite import default_out_dir, load_suite, run_suite, select

    suite = select(load_suite(suite_file), _names(only_models), _names(only_datasets), _names(only_tasks))
    if n_boot is not None:
        suite.n_boot = n_boot
    if no_cache:
        suite.cache = False
    out_dir = Path(out) if out else default_out_dir(suite)
    summary = run_suite(suite, out_dir, log=click.echo)
    click.echo(
        f"{len(summary['results'])} results, {len(summary['paired'])} paired comparisons, "
        f"{len(summary['skipped'])} skipped in {summary['seconds']:.1f}s -> {out_dir}"
    )


@eval_group.command("calibrate")
@click.argument("model", default="facevlm-clip-small")
@click.option("--data", default="real", show_default=True, help="Stored dataset with hand labels (name or path).")
@click.option("--split", default="train", show_default=True, help="A training split; dev/test/val are refused.")
@click.option(
    "--attributes",
    default="",
    help="Comma-separated attributes (default: the real set's expression, Smiling, Mouth_Slightly_Open, "
    "Eyeglasses, No_Beard, Wearing_Hat).",
)
@click.option("--folds", type=int, default=5, show_default=True, help="Identity-grouped CV folds.")
@click.option(
    "--confidence",
    type=float,
    default=0.9,
    show_default=True,
    help="How sure the held-out gain over the majority guess must be for an attribute to be asserted.",
)
def calibrate_cmd(model: str, data: str, split: str, attributes: str, folds: int, confidence: float) -> None:
    """Fit MODEL's zero-shot calibration on real labelled faces and write calibration.json into its folder.

    Per attribute: the score threshold (binary) and temperature fitted on DATA[SPLIT], and whether the
    decisions beat the majority guess on held-out identities; those that do not are answered
    "uncertain" by FaceCLIP's zero-shot head from then on."""
    from facevlm.eval.calibrate import CalibrateConfig, calibrate, summary_lines

    cfg = CalibrateConfig(data=data, split=split, folds=folds, confidence=confidence)
    if attributes:
        cfg.attributes = _names(attributes)
    cal, path = calibrate(model, cfg)
    for line in summary_lines(cal):
        click.echo(line)
    click.echo(f"-> {path}")


@eval_group.command("competence")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--model", default="facevlm-chat", show_default=True, help="The suite's name of the chat model.")
@click.option("--baseline", default="majority", show_default=True, help="The suite's name of the baseline.")
@click.option("--dataset", default="", help="The suite's dataset name (needed when the runs scored several).")
@click.option("--task", default="vqa", show_default=True)
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="File or folder to write (default: competence.json in the scored model's folder).",
)
def competence_cmd(
    run_dirs: tuple[str, ...], model: str, baseline: str, dataset: str, task: str, out: str | None
) -> None:
    """Which attributes a chat model may answer: from RUN_DIRS' paired comparison BASELINE vs MODEL.

    An attribute is trusted when the paired bootstrap CI of (model - baseline) accuracy lies above 0 on the
    real dev split (eval/real.yaml); the chat gateway says it is unsure about every other attribute."""
    from facevlm.eval.competence import competence_table, summary_lines, write_table

    table = competence_table([Path(p) for p in run_dirs], model, baseline, dataset, task)
    for line in summary_lines(table):
        click.echo(line)
    click.echo(f"-> {write_table(table, Path(out) if out else None)}")


@eval_group.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Report directory.")
def report_cmd(run_dirs: tuple[str, ...], out: str) -> None:
    """Merge RUN_DIRS (or result JSONs) into report.md + report.html with plots."""
    from facevlm.eval.report import write_report

    click.echo(str(write_report([Path(p) for p in run_dirs], Path(out))))


@eval_group.command("compare")
@click.argument("a", type=click.Path(exists=True, dir_okay=False))
@click.argument("b", type=click.Path(exists=True, dir_okay=False))
def compare_cmd(a: str, b: str) -> None:
    """Print B − A for every shared metric of two result JSONs, with both CIs.

    Independent CIs only: for a paired CI (same items, same resamples) name both models in the
    suite's `paired:` section."""
    ra, rb = _one(a), _one(b)
    if (ra["dataset"], ra["task"]) != (rb["dataset"], rb["task"]):
        click.echo(f"warning: comparing {ra['dataset']}/{ra['task']} with {rb['dataset']}/{rb['task']}", err=True)
    for key in [k for k in ra["metrics"] if k in rb["metrics"]]:
        va, vb = ra["metrics"][key], rb["metrics"][key]
        if va is None or vb is None:
            continue
        ca, cb = ra.get("ci", {}).get(key), rb.get("ci", {}).get(key)
        click.echo(f"{key:40s} {ra['model']}={va:.4f}{_fmt(ca)} {rb['model']}={vb:.4f}{_fmt(cb)} diff={vb - va:+.4f}")


@eval_group.command("export")
@click.argument("src")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Dataset root to write.")
@click.option(
    "--task",
    default="retrieval",
    show_default=True,
    help="`retrieval` (all captions per face) or an attribute to classify: a categorical one "
    "(expression, hair_color, ...) or a binary one (Smiling, Eyeglasses, ...).",
)
@click.option("--split", default=None, help="Export only this split (default: every split).")
@click.option("--size", type=int, default=None, help="Resize square face crops to SIZE (default: native).")
@click.option("--margin", type=float, default=0.2, show_default=True, help="Margin around the face box.")
@click.option("--samples-per-shard", type=int, default=1000, show_default=True)
@click.option("--sensitive", is_flag=True, help="Allow a sensitive attribute (apparent age, gender presentation...).")
def export_cmd(
    src: str,
    out: str,
    task: str,
    split: str | None,
    size: int | None,
    margin: float,
    samples_per_shard: int,
    sensitive: bool,
) -> None:
    """Write stored dataset SRC in CLIP_benchmark's wds/<name> layout.

    OUT/<split>/0.tar, 1.tar, ... and OUT/<split>/nshards.txt; OUT/dataset_type.txt ("retrieval" or
    "classification"); for classification OUT/classnames.txt and OUT/zeroshot_classification_templates.txt,
    worded from FaceCLIP's prompt table. Samples are s0000000.jpg with .txt (captions, one per line) or .cls
    (class index); only ground-truth labels are exported. Then, e.g.:
    clip_benchmark eval --dataset wds/faces --dataset_root OUT --task zeroshot_retrieval
    --model local-dir:MODEL_DIR"""
    from facevlm.data.store import iter_records, load_records
    from facevlm.eval.clip_benchmark import BenchmarkExportConfig, export_clip_benchmark

    cfg = BenchmarkExportConfig(
        task=task, size=size, margin=margin, samples_per_shard=samples_per_shard, split=split, sensitive=sensitive
    )
    result = export_clip_benchmark(iter_records(load_records(src, split)), out, cfg)
    for name, files in result.files.items():
        click.echo(f"{name}: {result.rows[name]} samples in {len(files)} shard(s) -> {Path(out) / name}")
    for reason, n in result.skipped.items():
        click.echo(f"skipped {n}: {reason}")


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _fmt(ci: list | None) -> str:
    return f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci and ci[0] is not None else ""


def _one(path: str) -> dict:
    from facevlm.errors import FacevlmError
    from facevlm.eval.output import read_results

    results, _ = read_results([Path(path)])
    if not results:
        raise FacevlmError(f"{path}: not a result JSON (needs dataset, model, pretrained, task, metrics, language)")
    return results[0]
