"""The CI smoke suite (eval/smoke.yaml) end to end: renders its synthetic set, runs every embedding
task for the random baseline and a tiny untrained open_clip model, writes JSONs and the report."""

from __future__ import annotations

import json

from facevlm.paths import REPO_ROOT


def test_smoke_suite_runs_and_writes_report(tmp_path, eval_home):
    from click.testing import CliRunner

    from facevlm.eval.cli import eval_group

    out = tmp_path / "smoke"
    res = CliRunner().invoke(
        eval_group, ["run", str(REPO_ROOT / "eval" / "smoke.yaml"), "--out", str(out)], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    results = [json.loads(p.read_text()) for p in out.glob("synth-tiny__*.json")]
    assert len(results) == 12  # 2 models x 6 tasks
    assert json.loads((out / "skipped.json").read_text())["items"] == []
    assert len(list(out.glob("paired__*.json"))) == 5
    report = (out / "report" / "report.md").read_text()
    assert "synth-tiny · zeroshot_classification" in report and "tiny-openclip" in report
    assert (out / "report" / "report.html").is_file() and any((out / "report" / "plots").glob("*.png"))
