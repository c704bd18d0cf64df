"""What the hardware does natively, for the precision choices of both model families (FaceCLIP training,
FaceVLM training and generation). One place, so "auto" means the same thing everywhere."""

from __future__ import annotations


def native_bf16(device_type: str) -> bool:
    """bf16 matmuls in hardware: a CUDA GPU that has them, or a CPU whose oneDNN has bf16 kernels
    (AVX512-BF16 or AMX). Elsewhere bf16 is emulated and slower than float32, so "auto" must not pick it."""
    import torch

    if device_type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device_type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False
