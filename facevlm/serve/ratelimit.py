"""Per-key rate limits: token buckets, checked before anything else of a request is read.

A bucket holds `burst` tokens and regains `per_minute` a minute; a request takes one or is refused with
429 `rate_limit_exceeded` and `Retry-After` (whole seconds until a token is back). The key is the
request's bearer credential (hashed: no key is kept in memory as given), else the client's address, so an
unauthenticated flood is limited too. /v1/chat/completions also takes a token from its own, usually
smaller, bucket: a chat answer costs far more than a thumbnail. Everything runs on the event loop (no
lock needed) and costs a dict lookup; /healthz is never limited.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from facevlm.serve.config import RateLimitConfig
from facevlm.serve.errors import error_response

CHAT_PATH = "/v1/chat/completions"
MAX_KEYS = 10_000  # buckets kept; beyond it the full (idle) ones are forgotten


class TokenBucket:
    def __init__(self, per_minute: int, burst: int, clock: Any = time.monotonic):
        self.rate, self.size, self.clock = per_minute / 60.0, float(burst or per_minute), clock
        self.buckets: dict[str, tuple[float, float]] = {}

    def wait(self, key: str) -> float:
        """Seconds until `key` has a token (0: it has one now)."""
        tokens = self._level(key)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, key: str) -> None:
        self.buckets[key] = (self._level(key) - 1.0, self.clock())
        if len(self.buckets) > MAX_KEYS:
            self.buckets = {k: v for k, v in self.buckets.items() if self._level(k) < self.size}

    def _level(self, key: str) -> float:
        tokens, then = self.buckets.get(key, (self.size, self.clock()))
        return min(self.size, tokens + (self.clock() - then) * self.rate)


class RateLimit:
    """ASGI middleware over every /v1 route (see the module docstring)."""

    def __init__(self, app: Any, cfg: RateLimitConfig, clock: Any = time.monotonic):
        self.app = app
        self.all = TokenBucket(cfg.requests_per_minute, cfg.burst, clock) if cfg.requests_per_minute else None
        self.chat = (
            TokenBucket(cfg.chat_requests_per_minute, cfg.chat_burst, clock) if cfg.chat_requests_per_minute else None
        )

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/"):
            return await self.app(scope, receive, send)
        buckets = [b for b in (self.all, self.chat if path == CHAT_PATH else None) if b is not None]
        key = client_key(scope)
        wait = max((b.wait(key) for b in buckets), default=0.0)
        if wait > 0:
            response = error_response(
                "rate limit exceeded for this API key; retry later",
                429,
                "rate_limit_exceeded",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
            return await response(scope, receive, send)
        for bucket in buckets:
            bucket.take(key)
        await self.app(scope, receive, send)


def client_key(scope: dict) -> str:
    headers = dict(scope.get("headers") or [])
    auth = headers.get(b"authorization", b"")
    if auth:
        return "key:" + hashlib.sha256(auth).hexdigest()
    client = scope.get("client") or ("?", 0)
    return f"addr:{client[0]}"
