"""The gateway's recipe (serve/*.yaml) as a dataclass; unknown keys are errors (facevlm.config).

Every rule is checked in `__post_init__`, so no way of building a config (a recipe, `from_dict`, the CLI's
`--host` override through `dataclasses.replace`, a test) can produce one that binds a public address
without API keys or takes a limit that makes no sense."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from facevlm.config import load_recipe
from facevlm.errors import FacevlmError
from facevlm.index.backends import BackendConfig
from facevlm.index.names import default_root, validate_gallery_name
from facevlm.index.search import PDVConfig
from facevlm.vision.identity import DEFAULT_IDENTITY_MODEL

MAX_THRESHOLD = 10.0  # identity distances (dlib's are under ~2): a larger one would call everyone the same

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
MODEL_ID_RULE = "1-128 ASCII letters, digits, '.', '_', ':', '-'; a letter or digit first"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@dataclass
class LimitsConfig:
    """Bounds on what one request may make the server read or decode."""

    max_request_bytes: int = 32 * 1024 * 1024
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000  # decompression-bomb guard, checked from the header before decoding
    max_inputs: int = 256  # strings/images per /v1/embeddings request
    max_files: int = 32  # images per add request

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FacevlmError(f"limits.{name}: {value!r} is not a positive integer")
        if self.max_image_bytes > self.max_request_bytes:
            raise FacevlmError(
                f"limits.max_image_bytes ({self.max_image_bytes}) exceeds limits.max_request_bytes "
                f"({self.max_request_bytes}): no such image could ever arrive"
            )


@dataclass
class IdentityConfig:
    """The identity expert (facevlm.vision.identity) behind same_person search, /v1/faces/verify,
    /identify and /clusters. `model`: a registered name, an entry point of facevlm.identity_models, or
    "module:Class"; `weights`: its asset name or folder ("" = the model's default asset); `threshold`:
    the same-person distance (None = the model's published value, dlib's 0.6 on LFW); galleries made by
    this server record `model` and another server's galleries are refused."""

    model: str = DEFAULT_IDENTITY_MODEL
    weights: str = ""
    threshold: float | None = None
    max_cluster_faces: int = 5000  # unlabelled faces one /clusters request may cluster (the CLI has no cap)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise FacevlmError("identity.model: give an identity model name")
        if self.threshold is not None and (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, int | float)
            or not 0 < self.threshold <= MAX_THRESHOLD
        ):
            raise FacevlmError(f"identity.threshold: {self.threshold!r} is not a distance in (0, {MAX_THRESHOLD}]")
        cap = self.max_cluster_faces
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise FacevlmError(f"identity.max_cluster_faces: {cap!r} is not a positive integer")


CHAT_BACKENDS = ("auto", "in_process", "vllm")
CROP_MODES = ("auto", "never")


def _check_counts(obj: object, prefix: str, names: tuple[str, ...], minimum: int = 1) -> None:
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise FacevlmError(f"{prefix}.{name}: {value!r} is not {what}")


@dataclass
class ChatEngineConfig:
    """The vllm chat backend's engine: a running one at `url` (its OpenAI base URL, serving the chat model
    and adapter ids), else one the gateway starts before its port opens and stops by PID when it stops;
    the rest is for that start."""

    url: str = ""
    port: int = 0  # 0 = a free port
    kv_cache_gib: int = 1
    max_lora_rank: int = 16
    startup_timeout_s: float = 300.0
    extra_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.url and not self.url.startswith(("http://", "https://")):
            raise FacevlmError(f"chat.engine.url: {self.url!r} is not an http(s) URL (the engine's /v1 base)")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port < 65536:
            raise FacevlmError(f"chat.engine.port {self.port!r} outside 0..65535")
        _check_counts(self, "chat.engine", ("kv_cache_gib", "max_lora_rank"))
        if not isinstance(self.extra_args, list) or not all(isinstance(a, str) for a in self.extra_args):
            raise FacevlmError("chat.engine.extra_args: expected a list of strings")


@dataclass
class ChatConfig:
    """/v1/chat/completions (docs/api.md "Chat"). `model` "" = no chat route. `adapters`: LoRA adapters on
    `model` served by id (name -> peft folder). The bounds are the request schema's, so a request the
    schema allows is never refused for its size."""

    model: str = ""
    served_model_name: str = ""
    adapters: dict[str, str] = field(default_factory=dict)
    backend: str = "auto"
    crop: str = "auto"
    max_messages: int = 32
    max_images: int = 4
    max_text_chars: int = 8000
    max_tokens: int = 512
    default_max_tokens: int = 256
    max_n: int = 4
    max_model_len: int = 2048  # prompt + completion, both backends (vLLM's --max-model-len)
    timeout_s: float = 120.0
    max_queue: int = 32
    max_batch: int = 8  # in_process: conversations generated together (requests that waited meanwhile)
    unsure_below_majority: bool = True  # say "unsure" where the model is not shown to beat the majority guess
    engine: ChatEngineConfig = field(default_factory=ChatEngineConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.engine, ChatEngineConfig):
            raise FacevlmError(f"chat.engine: expected a mapping of {', '.join(vars(ChatEngineConfig()))}")
        if self.backend not in CHAT_BACKENDS:
            raise FacevlmError(f"chat.backend {self.backend!r} is not one of {', '.join(CHAT_BACKENDS)}")
        if self.crop not in CROP_MODES:
            raise FacevlmError(f"chat.crop {self.crop!r} is not one of {', '.join(CROP_MODES)}")
        _check_counts(self, "chat", ("max_messages", "max_images", "max_text_chars", "max_tokens"))
        _check_counts(self, "chat", ("default_max_tokens", "max_n", "max_model_len", "max_queue", "max_batch"))
        if not isinstance(self.unsure_below_majority, bool):
            raise FacevlmError(f"chat.unsure_below_majority: not true/false: {self.unsure_below_majority!r}")
        if self.default_max_tokens > self.max_tokens:
            raise FacevlmError(f"chat.default_max_tokens ({self.default_max_tokens}) exceeds chat.max_tokens")
        if self.max_tokens >= self.max_model_len:
            raise FacevlmError(f"chat.max_tokens ({self.max_tokens}) leaves no room for a prompt in max_model_len")
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, int | float) or self.timeout_s <= 0:
            raise FacevlmError(f"chat.timeout_s: {self.timeout_s!r} is not a positive number of seconds")
        if not isinstance(self.adapters, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in self.adapters.items()
        ):
            raise FacevlmError("chat.adapters: expected a mapping of adapter id -> peft folder")
        for name in self.adapters:
            if not re.fullmatch(MODEL_ID_PATTERN, name) or name == self.model_id:
                raise FacevlmError(f"chat.adapters: {name!r} is not a usable model id ({MODEL_ID_RULE})")
        if self.model and not re.fullmatch(MODEL_ID_PATTERN, self.model_id):
            raise FacevlmError(f"chat: model id {self.model_id!r} is unusable ({MODEL_ID_RULE}); set served_model_name")

    @property
    def enabled(self) -> bool:
        return bool(self.model)

    @property
    def model_id(self) -> str:
        """The chat model's id (`served_model_name`, else the folder name: a server path is never shown)."""
        return self.served_model_name or Path(self.model).name

    def model_ids(self) -> list[str]:
        """Every id a chat request may name: the model, then its adapters."""
        return [self.model_id, *self.adapters] if self.enabled else []

    def backend_kind(self) -> str:
        """`auto`: vllm when an engine URL is configured or a GPU is present (then with an engine of its
        own), else in_process."""
        if self.backend != "auto":
            return self.backend
        if self.engine.url:
            return "vllm"
        from facevlm.engine.vllm_platform import has_cuda

        return "vllm" if has_cuda() else "in_process"


@dataclass
class RateLimitConfig:
    """Token buckets per API key (per client address when no keys are configured); 0 = off. `burst` is the
    bucket size (0 = one minute's worth). The chat bucket applies to /v1/chat/completions on top."""

    requests_per_minute: int = 0
    burst: int = 0
    chat_requests_per_minute: int = 0
    chat_burst: int = 0

    def __post_init__(self) -> None:
        _check_counts(self, "rate_limit", tuple(vars(self)), minimum=0)

    @property
    def enabled(self) -> bool:
        return bool(self.requests_per_minute or self.chat_requests_per_minute)


@dataclass
class ServeConfig:
    """`api_keys` are accepted Bearer keys; keys in the environment variable `api_keys_env`
    (comma-separated) are added, so secrets need not live in the YAML. No keys = open (loopback only)."""

    host: str = "127.0.0.1"
    port: int = 8000
    model: str = "facevlm-clip-small"
    served_model_name: str = ""  # id shown by /v1/models and accepted as `model`; default: see model_id
    device: str = "cpu"
    # FaceCLIP encoder backend: eager | channels_last | compile | onnx | bf16 | auto (facevlm.clip.backends);
    # "" = $FACEVLM_CLIP_BACKEND, else auto (CPU: ONNX Runtime; CUDA: compile; fallbacks log one line)
    clip_backend: str = ""
    text_cache_size: int = 4096  # text embeddings kept (LRU keyed by model fingerprint + text); 0 = off
    torch_threads: int = 0  # 0 = torch's default
    galleries_dir: str = ""  # default $FACEVLM_HOME/galleries
    default_gallery: str = "default"
    detect: bool = True
    label: bool = True
    sensitive_attributes: bool = False
    api_keys: list[str] = field(default_factory=list)
    api_keys_env: str = "FACEVLM_API_KEYS"
    log_level: str = "info"
    backend: BackendConfig = field(default_factory=BackendConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    pdv: PDVConfig = field(default_factory=PDVConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    ui: bool = False  # mount the web UI (facevlm/ui, gradio) at /ui: one server, one port (serve/*.yaml: on)

    def __post_init__(self) -> None:
        if not isinstance(self.api_keys, list) or not all(isinstance(k, str) for k in self.api_keys):
            raise FacevlmError("api_keys: expected a list of strings")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise FacevlmError(f"port {self.port!r} outside 1..65535")
        if not self.keys() and self.host not in LOOPBACK:
            raise FacevlmError(
                f"host {self.host} is not loopback; configure api_keys (or ${self.api_keys_env}) "
                "before exposing the gateway"
            )
        if self.log_level not in LOG_LEVELS:
            raise FacevlmError(f"log_level {self.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
        validate_gallery_name(self.default_gallery)
        if self.clip_backend:
            from facevlm.clip.backends import check_backend

            check_backend(self.clip_backend)
        if (
            isinstance(self.text_cache_size, bool)
            or not isinstance(self.text_cache_size, int)
            or self.text_cache_size < 0
        ):
            raise FacevlmError(f"text_cache_size: {self.text_cache_size!r} is not a non-negative integer")
        if not isinstance(self.limits, LimitsConfig):
            raise FacevlmError(f"limits: expected a mapping of {', '.join(vars(LimitsConfig()))}")
        if not isinstance(self.identity, IdentityConfig):
            raise FacevlmError(f"identity: expected a mapping of {', '.join(vars(IdentityConfig()))}")
        if not isinstance(self.chat, ChatConfig):
            raise FacevlmError(f"chat: expected a mapping of {', '.join(vars(ChatConfig()))}")
        if not isinstance(self.rate_limit, RateLimitConfig):
            raise FacevlmError(f"rate_limit: expected a mapping of {', '.join(vars(RateLimitConfig()))}")
        if self.model_id in self.chat.model_ids():
            raise FacevlmError(f"chat: id {self.model_id!r} is the FaceCLIP's; give the chat model another id")

    @property
    def model_id(self) -> str:
        """The id clients see and send: `served_model_name`, else the model's name (the folder name of a
        local folder: a server path is never shown)."""
        if self.served_model_name:
            return self.served_model_name
        return Path(self.model).name if self.model.startswith(("/", "./", "../", "~")) else self.model

    def galleries_root(self) -> Path:
        """The one directory the gateway resolves gallery names under (it never takes a path)."""
        return Path(self.galleries_dir).expanduser() if self.galleries_dir else default_root()

    def keys(self) -> list[str]:
        extra = os.environ.get(self.api_keys_env, "") if self.api_keys_env else ""
        return [k.strip() for k in [*self.api_keys, *extra.split(",")] if k.strip()]


def load_serve_config(path: str | Path) -> ServeConfig:
    try:
        return load_recipe(ServeConfig, path)
    except FacevlmError as exc:
        message = str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
        raise FacevlmError(message, code=exc.code, status_code=exc.status_code) from None
