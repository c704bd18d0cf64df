"""How a FaceCLIP forward runs: `eager` (open_clip's own), `channels_last`, `compile`, `onnx`, `bf16`, `auto`.

Measured by `facevlm bench clip --threads 1` on the project's 2-core CPU (facevlm-clip-small, 128 px, batch
32, load 3-5 from other jobs), as ratios to open_clip's eager forward of the same weights, max |Δ| of the
normalised embeddings in parentheses: images onnx 4.5-4.8x, compile 2.8-2.9x, channels_last 1.4x (all
<= 7.6e-7); text onnx 1.7x for one query (2.0-2.2x in a quieter single-purpose run) and 1.9x for 64
prompts (1.6e-7; ONNX Runtime then runs at ~170 GFLOP/s, about one core's fp32 peak), compile 1.0x.
bf16 autocast (this EPYC has AVX512-BF16) is 2.6x on images and 2.8x on 64 prompts but misses the
1e-3 bound (images 4.3e-2, cosine 0.987; text 1.3e-3), so it is opt-in only.

- `channels_last` converts the image tower's weights to NHWC in place (a layout, not a copy: training
  the model afterwards still trains the same parameters) and feeds NHWC batches. Text: eager.
- `compile` adds `torch.compile(dynamic=False)` of the image tower. Static shapes are ~1.6x faster than
  `dynamic=True` here and compile in seconds instead of a minute, so a batch of n images runs as
  power-of-two chunks (13 = 8 + 4 + 1, no padding wasted): at most 7 shapes per model, each compiled
  once. Compiled kernels are cached on disk by inductor in `$FACEVLM_HOME/cache/inductor`
  (TORCHINDUCTOR_CACHE_DIR, unless already set): a cold compile of one shape takes ~15-30 s on this
  CPU, a warm one ~2 s. The text tower is not compiled: it gained nothing (one query 7.07 vs 7.01 ms,
  64 prompts 475 vs 447 ms) for ~15 s per (batch, length) shape. Text: eager.
- `onnx` runs both towers in ONNX Runtime (facevlm.clip.onnxrt: one export per weights, cached in
  `$FACEVLM_HOME/cache/onnx`, dynamic batch and token axes, checked against eager before it serves).
- `bf16` is channels_last under bf16 autocast (CPU; bf16 or fp16 on CUDA), both towers. Not within 1e-3.
- `auto` is `onnx` on CPU and `compile` on CUDA; on CUDA every backend but `eager` also runs under
  autocast (bf16 where the GPU has it, else fp16). Embeddings come back float32 either way.

Fallbacks, each logged once per model and tower as "clip <tower> backend X unavailable (why); using Y":
onnx -> compile (image) or eager (text) when onnxruntime is missing, the model is on a GPU, the export or
its check fails, or FACEVLM_NO_ONNX=1; compile -> channels_last when there is no C compiler, an op is
unsupported, or FACEVLM_NO_COMPILE=1. Repeated texts cost a lookup instead of a forward: `TextCache`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch

from facevlm import paths
from facevlm.clip import onnxrt
from facevlm.errors import FacevlmError
from facevlm.hardware import native_bf16

BACKENDS = ("eager", "channels_last", "compile", "onnx", "bf16", "auto")
NO_COMPILE_ENV = "FACEVLM_NO_COMPILE"  # "1": never compile (the fallback path, on purpose)
NO_ONNX_ENV = onnxrt.NO_ONNX_ENV
BACKEND_ENV = "FACEVLM_CLIP_BACKEND"  # the loader's default backend where no recipe names one
MAX_CHUNK = 64  # compiled chunks: 64, 32, ..., 1 -> at most 7 static shapes (dynamo's recompile limit is 8)
log = logging.getLogger("facevlm")


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise FacevlmError(f"clip backend {name!r} is not one of {', '.join(BACKENDS)}")
    return name


def default_backend() -> str:
    """`$FACEVLM_CLIP_BACKEND`, else `auto`. The test suite sets `channels_last`: each test process has a
    fresh $FACEVLM_HOME, so its inductor and ONNX caches would be cold and every process would rebuild."""
    return check_backend(os.environ.get(BACKEND_ENV) or "auto")


def resolve(name: str, device: torch.device) -> str:
    """The backend `name` stands for on `device` (`auto` -> `onnx` on CPU, `compile` on CUDA)."""
    if check_backend(name) == "auto":
        return "onnx" if device.type == "cpu" else "compile"
    return name


def inductor_cache_dir() -> str:
    """Where compiled kernels persist between processes (set for inductor before the first compile)."""
    return os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(paths.home() / "cache" / "inductor"))


def chunks(n: int) -> list[int]:
    """Sizes of the static-shape chunks a batch of `n` runs as: 64s, then the binary digits of the rest."""
    out = [MAX_CHUNK] * (n // MAX_CHUNK)
    rest = n % MAX_CHUNK
    out += [1 << b for b in range(MAX_CHUNK.bit_length(), -1, -1) if rest & (1 << b)]
    return out


def _autocast(device: torch.device, backend: str) -> Any:
    if backend == "bf16" and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if device.type != "cuda" or backend == "eager":
        return nullcontext()
    dtype = torch.bfloat16 if native_bf16("cuda") else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


class _Runner:
    """One tower of `model` through one backend, with the onnx stage and the logged fallbacks both towers
    share; one runner per (model, tower, backend), see `image_runner` / `text_runner`."""

    tower = ""
    after_onnx = ""  # where the onnx backend falls back to

    def __init__(self, model: Any, backend: str):
        self.model = model
        self.device = next(model.parameters()).device
        self.backend = resolve(backend, self.device)
        self._lock = threading.Lock()
        self._ort: onnxrt.OrtTower | None = None
        if self.backend == "onnx" and (why := onnxrt.unavailable(self.device)):
            self._fall_back(why)

    def _fall_back(self, why: str) -> None:
        to = self.after_onnx if self.backend == "onnx" else "channels_last"
        log.warning("clip %s backend %s unavailable (%s); using %s", self.tower, self.backend, why, to)
        self.backend = to
        self._ort = None
        self._enter(to)

    def _enter(self, backend: str) -> None:
        """Set up `backend` after a fallback (the image runner compiles here)."""

    def _run_onnx(self, x: torch.Tensor) -> torch.Tensor | None:
        """The ONNX Runtime output, or None once the onnx stage has failed (and fell back, logged)."""
        session = self._ort
        if session is None or session.stale():
            with self._lock:
                if self.backend != "onnx":
                    return None
                if self._ort is None or self._ort.stale():
                    try:
                        self._ort = onnxrt.OrtTower(self.model, self.tower, x)
                    except Exception as exc:  # exporter and runtime raise many types: all mean "can't"
                        self._fall_back(_reason(exc))
                        return None
                session = self._ort
        try:
            return session(x)
        except Exception as exc:  # e.g. a shape the exported graph cannot take
            with self._lock:
                if self.backend == "onnx":
                    self._fall_back(_reason(exc))
            return None


class ImageRunner(_Runner):
    """`model.encode_image` through one backend."""

    tower = "image"
    after_onnx = "compile"

    def __init__(self, model: Any, backend: str):
        self._compiled: Callable | None = None
        super().__init__(model, backend)
        if self.backend != "eager":
            model.visual.to(memory_format=torch.channels_last)
        if self.backend == "compile" and self._compiled is None:  # (a fallback from onnx compiled already)
            self._compiled = self._compile()

    def _enter(self, backend: str) -> None:
        self._compiled = self._compile() if backend == "compile" else None

    def _compile(self) -> Callable | None:
        if os.environ.get(NO_COMPILE_ENV, "") not in ("", "0"):
            self._fall_back(f"{NO_COMPILE_ENV} is set")
            return None
        inductor_cache_dir()
        if self.device.type == "cpu":  # inductor's C++ toolchain probe warns "No CUDA runtime is found": noise here
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        return torch.compile(self.model.visual, dynamic=False)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        """Unnormalised image features [N, D] (float32) of a preprocessed batch [N, 3, H, W]."""
        if self.backend == "eager":
            return self.model.encode_image(pixels).float()
        if self.backend == "onnx":
            out = self._run_onnx(pixels)
            if out is not None:
                return out
        pixels = pixels.contiguous(memory_format=torch.channels_last)
        with _autocast(self.device, self.backend):
            if self._compiled is None:
                return self.model.encode_image(pixels).float()
            out, start = [], 0
            for size in chunks(len(pixels)):
                out.append(self._run_compiled(pixels[start : start + size]).float())
                start += size
            return torch.cat(out)

    def _run_compiled(self, pixels: torch.Tensor) -> torch.Tensor:
        compiled = self._compiled
        if compiled is None:  # fell back meanwhile
            return self.model.visual(pixels)
        try:
            return compiled(pixels)
        except Exception as exc:  # inductor raises many types (no compiler, codegen, lowering): all mean "can't"
            with self._lock:
                if self._compiled is not None:
                    self._fall_back(_reason(exc))
            return self.model.visual(pixels)


class TextRunner(_Runner):
    """`model.encode_text` through one backend: on CPU only onnx and bf16 change the text forward, the others
    run it eager (channels_last is an image layout; compile gained nothing on text, see the module notes);
    on CUDA every backend but eager runs it under autocast."""

    tower = "text"
    after_onnx = "eager"

    def __init__(self, model: Any, backend: str):
        super().__init__(model, backend)
        if self.backend in ("channels_last", "compile") and self.device.type == "cpu":
            self.backend = "eager"

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        """Unnormalised text features [N, D] (float32) of a token batch [N, L]."""
        if self.backend == "onnx":
            out = self._run_onnx(tokens)
            if out is not None:
                return out
        with _autocast(self.device, self.backend):
            return self.model.encode_text(tokens).float()


_runners_lock = threading.Lock()


def _runner(model: Any, kind: type[_Runner], backend: str) -> Any:
    check_backend(backend)
    with _runners_lock:
        runners = model.__dict__.setdefault("_facevlm_runners", {})
        key = (kind.tower, backend)
        if key not in runners:
            runners[key] = kind(model, backend)
        return runners[key]


def image_runner(model: Any, backend: str = "eager") -> ImageRunner:
    """The image runner of `model` through `backend`, created once and kept on the model itself (its
    lifetime is the model's): a compile or export is paid once per model and process."""
    return _runner(model, ImageRunner, backend)


def text_runner(model: Any, backend: str = "eager") -> TextRunner:
    """The text runner of `model` through `backend`, kept like `image_runner`'s."""
    return _runner(model, TextRunner, backend)


class TextCache:
    """Bounded, thread-safe LRU of normalised text embeddings keyed by (model fingerprint, text).

    Repeated search queries and the prompts of zero-shot heads then cost a dictionary lookup. The key
    holds the model's fingerprint, so one process-wide cache serves several models without mixing them."""

    def __init__(self, max_items: int = 4096):
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0:
            raise FacevlmError(f"text cache size {max_items!r} is not a non-negative integer")
        self.max_items = max_items
        self._items: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get_many(self, fingerprint: str, texts: Sequence[str]) -> list[torch.Tensor | None]:
        with self._lock:
            out = []
            for text in texts:
                row = self._items.get((fingerprint, text))
                if row is not None:
                    self._items.move_to_end((fingerprint, text))
                out.append(row)
            found = sum(r is not None for r in out)
            self.hits, self.misses = self.hits + found, self.misses + len(out) - found
            return out

    def put_many(self, fingerprint: str, texts: Sequence[str], rows: torch.Tensor) -> None:
        if not self.max_items:
            return
        with self._lock:
            for text, row in zip(texts, rows):
                self._items[(fingerprint, text)] = row.clone()
                self._items.move_to_end((fingerprint, text))
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def _default_cache_size() -> int:
    raw = os.environ.get(TEXT_CACHE_ENV, "")
    try:
        return int(raw) if raw else DEFAULT_TEXT_CACHE_SIZE
    except ValueError:
        raise FacevlmError(f"${TEXT_CACHE_ENV}={raw!r} is not a number of texts") from None


DEFAULT_TEXT_CACHE_SIZE = 4096  # texts; 256-d float32 rows: ~4 MiB
TEXT_CACHE_ENV = "FACEVLM_TEXT_CACHE_SIZE"  # 0 switches the process-wide cache off (e.g. a "before" benchmark)
TEXT_CACHE = TextCache(_default_cache_size())  # the process's cache, shared by every FaceCLIP (keys hold the model)
