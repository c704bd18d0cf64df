"""Benchmark harness: metrics with bootstrap CIs and fairness gaps, tasks, model plug-ins, suites,
CLIP_benchmark-compatible result files and reports. See docs/architecture.md and eval/*.yaml."""
