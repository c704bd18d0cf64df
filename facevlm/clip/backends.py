"""How a FaceCLIP image forward runs: `eager` (open_clip's own forward), `channels_last`, `compile`, `auto`.

Measured by `facevlm bench clip` on the project's 2-core CPU (facevlm-clip-small, batch 32, one thread):
channels_last alone ~1.5x open_clip's eager forward, channels_last + `torch.compile` (inductor) ~2.4x,
embeddings equal within ~1.4e-6. The backends are layouts and compilers of the *same* weights: nothing
is quantised or exported, so what `eager` scores is what every backend serves.

- `channels_last` converts the image tower's weights to NHWC in place (a layout, not a copy: training
  the model afterwards still trains the same parameters) and feeds NHWC batches.
- `compile` adds `torch.compile(dynamic=False)` of the image tower. Static shapes are ~1.6x faster than
  `dynamic=True` here and compile in seconds instead of a minute, so a batch of n images runs as
  power-of-two chunks (13 = 8 + 4 + 1, no padding wasted): at most 7 shapes per model, each compiled
  once. Compiled kernels are cached on disk by inductor in `$FACEVLM_HOME/cache/inductor`
  (TORCHINDUCTOR_CACHE_DIR, unless already set): a cold compile of one shape takes ~15-30 s on this
  CPU, a warm one ~2 s. When compiling is impossible (no C compiler, an unsupported op, FACEVLM_NO_COMPILE=1)
  the runner logs one warning and stays on `channels_last` for the rest of the process.
- `auto` is `compile` on CPU and CUDA. On CUDA every backend but `eager` also runs under autocast
  (bf16 where the GPU has it, else fp16); embeddings come back float32 either way.

The text tower is not compiled: at the gateway's batch of one query it is overhead-bound (5.7 ms eager vs
7.0 ms compiled, both one thread) and at batch 64 compile gained 1.4x for 12 s per (batch, length) shape.
Repeated texts cost a lookup instead: `TextCache`.
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
from facevlm.errors import FacevlmError

BACKENDS = ("eager", "channels_last", "compile", "auto")
NO_COMPILE_ENV = "FACEVLM_NO_COMPILE"  # "1": never compile (the fallback path, on purpose)
BACKEND_ENV = "FACEVLM_CLIP_BACKEND"  # the loader's default backend where no recipe names one
MAX_CHUNK = 64  # compiled chunks: 64, 32, ..., 1 -> at most 7 static shapes (dynamo's recompile limit is 8)
log = logging.getLogger("facevlm")


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise FacevlmError(f"clip backend {name!r} is not one of {', '.join(BACKENDS)}")
    return name


def default_backend() -> str:
    """`$FACEVLM_CLIP_BACKEND`, else `auto`. The test suite sets `channels_last`: each test process has a
    fresh $FACEVLM_HOME, so its inductor cache would be cold and every process would compile anew."""
    return check_backend(os.environ.get(BACKEND_ENV) or "auto")


def resolve(name: str, device: torch.device) -> str:
    """The backend `name` stands for on `device` (`auto` -> `compile`)."""
    return "compile" if check_backend(name) == "auto" else name


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
    if device.type != "cuda" or backend == "eager":
        return nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


class ImageRunner:
    """`model.encode_image` through one backend; one runner per (model, backend), see `image_runner`."""

    def __init__(self, model: Any, backend: str):
        self.model = model
        self.device = next(model.parameters()).device
        self.backend = resolve(backend, self.device)
        self._lock = threading.Lock()
        self._compiled: Callable | None = None
        if self.backend != "eager":
            model.visual.to(memory_format=torch.channels_last)
        if self.backend == "compile":
            self._compiled = self._compile()

    def _compile(self) -> Callable | None:
        if os.environ.get(NO_COMPILE_ENV, "") not in ("", "0"):
            self._fall_back(f"{NO_COMPILE_ENV} is set")
            return None
        inductor_cache_dir()
        if self.device.type == "cpu":  # inductor's C++ toolchain probe warns "No CUDA runtime is found": noise here
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        return torch.compile(self.model.visual, dynamic=False)

    def _fall_back(self, why: str) -> None:
        log.warning("clip backend compile unavailable (%s); using channels_last", why)
        self.backend, self._compiled = "channels_last", None

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        """Unnormalised image features [N, D] (float32) of a preprocessed batch [N, 3, H, W]."""
        if self.backend == "eager":
            return self.model.encode_image(pixels).float()
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
                    self._fall_back(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}")
            return self.model.visual(pixels)


_runners_lock = threading.Lock()


def image_runner(model: Any, backend: str = "eager") -> ImageRunner:
    """The runner of `model` through `backend`, created once and kept on the model itself (its lifetime is
    the model's): a compile is paid once per model and process."""
    check_backend(backend)
    with _runners_lock:
        runners = model.__dict__.setdefault("_facevlm_runners", {})
        if backend not in runners:
            runners[backend] = ImageRunner(model, backend)
        return runners[backend]


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
