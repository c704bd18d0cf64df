"""What the hardware does natively, for the precision choices of both model families (FaceCLIP training,
FaceVLM training and generation). One place, so "auto" means the same thing everywhere."""

from __future__ import annotations

import functools
import logging
import time

log = logging.getLogger(__name__)

BF16_MIN_SPEEDUP = 1.1  # bf16_faster: how much faster a bf16 matmul must be than float32 for "auto" to pick it


def native_bf16(device_type: str) -> bool:
    """bf16 matmuls in hardware: a CUDA GPU that has them, or a CPU whose oneDNN has bf16 kernels
    (AVX512-BF16 or AMX). Elsewhere bf16 is emulated and slower than float32, so "auto" must not pick it."""
    import torch

    if device_type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device_type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


@functools.cache
def bf16_faster(device_type: str) -> bool:
    """Whether "auto" precision should be bf16 here: native bf16 matmuls, and on a CPU measurably faster ones.

    The CPU flags do not say it: a 2-core Zen 4 EPYC (AVX512-BF16) ran FaceCLIP training 1.5x faster under
    bf16 autocast, while an Emerald Rapids VM that reports AVX512-BF16 but no AMX ran bf16 matmuls 0.8x as
    fast as float32, and a training step 1.2x slower (docs/benchmarks.md). So on a CPU one matmul of the
    text towers' shape is timed in both dtypes, once per process (~0.1 s), and bf16 is chosen only when it is
    at least `BF16_MIN_SPEEDUP` times faster."""
    if not native_bf16(device_type):
        return False
    if device_type != "cpu":
        return True
    speedup = bf16_matmul_speedup()
    chosen = speedup >= BF16_MIN_SPEEDUP
    log.info("precision auto: %s (bf16 matmuls run %.2fx float32's speed here)", "bf16" if chosen else "fp32", speedup)
    return chosen


def bf16_matmul_speedup(rows: int = 1024, dim: int = 384, hidden: int = 1536, repeats: int = 5) -> float:
    """float32 time / bf16 time of one [rows, dim] x [dim, hidden] matmul on the CPU (best of `repeats`,
    interleaved so that a change of clock speed hits both)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(rows, dim, generator=gen), torch.randn(hidden, dim, generator=gen)
    pairs = {torch.float32: (x, w), torch.bfloat16: (x.bfloat16(), w.bfloat16())}
    best = dict.fromkeys(pairs, float("inf"))
    for i in range(repeats + 1):
        for dtype, (a, b) in pairs.items():
            t0 = time.perf_counter()
            torch.nn.functional.linear(a, b)
            if i:  # the first round warms the kernels up
                best[dtype] = min(best[dtype], time.perf_counter() - t0)
    return best[torch.float32] / best[torch.bfloat16]
