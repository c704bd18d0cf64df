"""The `onnx` backend's engine: one FaceCLIP tower exported to ONNX and run by ONNX Runtime (CPU).

Why ONNX Runtime: on the project's 2-core CPU (facevlm-clip-small, one thread) it ran the image tower
~4.5x and the MiniLM text tower ~1.7-2.2x open_clip's eager forward, where `torch.compile` gained ~2.8x
on images and nothing on text; outputs agree within ~1e-6 (figures: facevlm.clip.backends). It needs no
C++ compiler, and an export takes ~1 s per tower instead of a compile per batch shape: the graph has a
dynamic batch axis (and, for text, a dynamic token axis), so one session serves every batch. The cost:
the session keeps its own copy of the weights plus an arena; facevlm-clip-small's process RSS grew by
~320 MiB with both towers after a few batches (the arena is worth it: without it images ran 1.6x slower).

The same weights, no quantisation: every tower is checked against eager on its first batch (normalised
outputs within `CHECK_ATOL`) before it serves, and any failure (no onnxruntime, an op the exporter cannot
express, a mismatch, a runtime error) is the caller's cue to fall back (facevlm.clip.backends logs it).
Exports are cached in `$FACEVLM_HOME/cache/onnx/<tower>-<hash>.onnx`, the hash covering the weights and the
torch/onnxruntime versions (the 6 most recently used per tower are kept); a tower whose weights changed in
place since its export (training) is re-exported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from facevlm import paths
from facevlm.errors import FacevlmError

NO_ONNX_ENV = "FACEVLM_NO_ONNX"  # "1": never export (the fallback path, on purpose)
OPSET = 17
CHECK_ATOL = 1e-4  # normalised outputs vs eager on the first batch: 10x inside the 1e-3 bound
KEEP_EXPORTS = 6  # per tower, most recently used first (facevlm-clip-small: ~100 MB for both towers)
log = logging.getLogger("facevlm")


def unavailable(device: torch.device) -> str | None:
    """Why the onnx backend cannot run a model on `device` here, or None when it can."""
    if os.environ.get(NO_ONNX_ENV, "") not in ("", "0"):
        return f"{NO_ONNX_ENV} is set"
    if device.type != "cpu":
        return f"ONNX Runtime runs on the CPU here, the model is on {device.type}"
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed"
    return None


def cache_dir() -> Path:
    return paths.home() / "cache" / "onnx"


def _tensors(model: Any) -> list[torch.Tensor]:
    return [*model.parameters(), *model.buffers()]


def weights_version(tensors: list[torch.Tensor]) -> int:
    """Sum of the in-place version counters of a model's parameters and buffers: it moves whenever an
    optimiser step, `load_state_dict` or a BatchNorm update writes a weight, so a stale export is noticed.
    Over a kept list: walking the modules for it took 0.6 ms, a fifth of a one-query text forward."""
    return sum(t._version for t in tensors)


def _weights_hash(model: Any) -> str:
    """Hash of the whole state (both towers), taken once per weights version and kept on the model."""
    version = weights_version(_tensors(model))
    cached = model.__dict__.get("_facevlm_weights_hash")
    if cached and cached[0] == version:
        return cached[1]
    import onnxruntime

    h = hashlib.blake2b(digest_size=12)
    h.update(f"{type(model).__name__}|torch {torch.__version__}|ort {onnxruntime.__version__}|{OPSET}".encode())
    for name, value in model.state_dict().items():
        h.update(f"{name}|{value.dtype}|{tuple(value.shape)}".encode())
        h.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    model.__dict__["_facevlm_weights_hash"] = (version, h.hexdigest())
    return h.hexdigest()


def _prune(folder: Path, tower: str) -> None:
    """Drop all but the `KEEP_EXPORTS` most recently used exports of `tower`: every untrained or retrained model
    has new weights, and a text tower is ~90 MB (MiniLM)."""
    files = sorted(folder.glob(f"{tower}-*.onnx"), key=lambda f: f.stat().st_mtime, reverse=True)
    for old in files[KEEP_EXPORTS:]:
        old.unlink(missing_ok=True)


class _Tower(torch.nn.Module):
    """`model.encode_image` or `model.encode_text` as a module: the export entry point for any open_clip
    model type (CLIP keeps its text tower in top-level attributes, CustomTextCLIP in `.text`)."""

    def __init__(self, model: Any, tower: str):
        super().__init__()
        self.model, self.tower = model, tower

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(x) if self.tower == "image" else self.model.encode_text(x)


class OrtTower:
    """One tower of `model` in an ONNX Runtime session, built from (and checked on) an example batch."""

    def __init__(self, model: Any, tower: str, example: torch.Tensor):
        import onnxruntime as ort

        self.model, self.tower = model, tower
        self._tensors = _tensors(model)  # the same objects for the model's life (training writes in place)
        self.version = weights_version(self._tensors)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()  # as many as torch uses: `--threads` rules both
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(self._export(example)), opts, providers=["CPUExecutionProvider"])
        self._check(example)

    def _export(self, example: torch.Tensor) -> Path:
        path = cache_dir() / f"{self.tower}-{_weights_hash(self.model)}.onnx"
        if path.is_file():
            os.utime(path)  # recently used: pruned last
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        axes = {0: "batch", 1: "tokens"} if self.tower == "text" else {0: "batch"}
        wrapper = _Tower(self.model, self.tower)
        was_training = self.model.training
        try:
            # the exporter's train(False)/restore walks submodules: the wrapper must be in eval mode too
            wrapper.eval()
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # TorchScript tracer warnings about Python control flow
                torch.onnx.export(
                    wrapper,
                    (example[:2],),
                    str(tmp),
                    input_names=["x"],
                    output_names=["y"],
                    dynamic_axes={"x": axes, "y": {0: "batch"}},
                    opset_version=OPSET,
                    dynamo=False,  # the TorchScript exporter: the dynamo one needs onnxscript
                )
            os.replace(tmp, path)
        finally:
            self.model.train(was_training)
            tmp.unlink(missing_ok=True)
        log.info("clip %s tower exported to %s", self.tower, path)
        _prune(path.parent, self.tower)
        return path

    def _check(self, example: torch.Tensor) -> None:
        """Equal to eager on the example, and for text also on a shorter, smaller batch where eager takes
        one (a graph that froze the traced token count must not pass)."""
        probes = [example]
        if self.tower == "text" and example.shape[1] > 1:
            probes.append(example[:1, :-1])
        for i, x in enumerate(probes):
            try:
                with torch.no_grad():
                    want = F.normalize(_Tower(self.model, self.tower)(x).float(), dim=-1)
            except RuntimeError:
                if i == 0:
                    raise
                continue  # open_clip's own text transformer takes its full context only, and is only fed that
            err = float((F.normalize(self(x), dim=-1) - want).abs().max())
            if not err <= CHECK_ATOL:
                raise FacevlmError(f"exported {self.tower} tower differs from eager by {err:.1e} at {tuple(x.shape)}")

    def stale(self) -> bool:
        return weights_version(self._tensors) != self.version

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised float32 features [N, D] of a batch (returned on the batch's device)."""
        out = self.session.run(None, {"x": x.detach().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(out).float().to(x.device)
