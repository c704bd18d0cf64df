"""`facevlm bench clip` on the tiny config: one row per backend, image and text, against open_clip's
eager forward of the same weights (no timings are asserted: only that the table is complete and honest)."""

from __future__ import annotations

from click.testing import CliRunner


def test_bench_clip_rows_per_backend() -> None:
    from facevlm.clip.bench import bench_clip

    args = ["--model", "facevlm-clip-tiny", "--batch-size", "2", "--batches", "2", "--repeats", "1"]
    result = CliRunner().invoke(bench_clip, [*args, "--threads", "1", "--backends", "eager,onnx,bf16"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "facevlm-clip-tiny, cpu, 1 thread(s), batch 2, 4 images per pass" in out
    tables = [t for t in out.split("\n\n") if t.startswith("| ")]
    assert [t.splitlines()[0].split(" | ")[0] for t in tables] == [
        "| image path",
        "| text, one query",
        "| text, 64 prompts",
    ]
    for table in tables:
        rows = {line.split(" | ")[0].split(", ")[-1]: line.split(" | ") for line in table.splitlines()[2:]}
        references = 1 if table.startswith("| image") else 2  # text: trimmed, then padded to the context
        assert list(rows)[0].startswith("| open_clip encode_") and list(rows)[references:] == ["eager", "onnx", "bf16"]
        if references == 2:
            assert list(rows)[1] == "padded to the context"
        assert rows["onnx"][1] == "onnx"  # ran as itself, no fallback
        for name in ("eager", "onnx"):  # max |Δ| within the bound (bf16 is reported, not held to it)
            assert float(rows[name][5]) <= 1e-3 and float(rows[name][6]) >= 0.9999
    assert "text cache hit (one query, auto)" in out
