"""hardware.bf16_faster: "auto" precision picks bf16 only where bf16 matmuls measure faster."""

from __future__ import annotations

import math

import pytest

from facevlm import hardware


@pytest.fixture(autouse=True)
def _fresh_decision():
    hardware.bf16_faster.cache_clear()
    yield
    hardware.bf16_faster.cache_clear()


@pytest.mark.parametrize(("speedup", "chosen"), [(1.8, True), (1.1, True), (1.05, False), (0.55, False)])
def test_cpu_auto_follows_the_measured_speedup(monkeypatch, speedup: float, chosen: bool) -> None:
    monkeypatch.setattr(hardware, "native_bf16", lambda device_type: True)
    monkeypatch.setattr(hardware, "bf16_matmul_speedup", lambda: speedup)
    assert hardware.bf16_faster("cpu") is chosen


def test_no_native_bf16_is_never_chosen_and_not_measured(monkeypatch) -> None:
    monkeypatch.setattr(hardware, "native_bf16", lambda device_type: False)
    monkeypatch.setattr(hardware, "bf16_matmul_speedup", lambda: pytest.fail("measured without native bf16"))
    assert not hardware.bf16_faster("cpu")
    assert not hardware.bf16_faster("cuda")


def test_the_measurement_is_a_real_ratio() -> None:
    if not hardware.native_bf16("cpu"):
        pytest.skip("this CPU has no bf16 matmuls")
    speedup = hardware.bf16_matmul_speedup(rows=64, repeats=2)
    assert math.isfinite(speedup) and 0.05 < speedup < 20
