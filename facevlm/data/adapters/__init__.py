"""Real-dataset adapters: each reads one dataset exactly as distributed into FaceRecords.

Adapters are looked up by name and imported on first use. `open_source` is the one entry point the CLI,
the recipe runner and user code share: it checks the options against the adapter's signature, and the
returned `SourceReader` is an iterator of records whose `summary` counts what was loaded and skipped.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from facevlm.data.adapters.base import Adapter, ImportSummary
from facevlm.errors import FacevlmError
from facevlm.schema import FaceRecord

REGISTRY: dict[str, str] = {
    "celeba": "facevlm.data.adapters.celeba:CelebA",
    "fairface": "facevlm.data.adapters.fairface:FairFace",
    "utkface": "facevlm.data.adapters.utkface:UTKFace",
    "fer2013": "facevlm.data.adapters.fer2013:FER2013",
    "rafdb": "facevlm.data.adapters.rafdb:RAFDB",
    "affectnet": "facevlm.data.adapters.affectnet:AffectNet",
    "lfw": "facevlm.data.adapters.lfw:LFW",
    "facecaption15m": "facevlm.data.adapters.facecaption:FaceCaption15M",
    "imagefolder": "facevlm.data.adapters.folders:ImageFolder",
    "jsonl": "facevlm.data.adapters.folders:JSONL",
    "samples": "facevlm.data.adapters.samples:Samples",
    "real": "facevlm.data.adapters.real:Real",
}


def get_adapter(name: str) -> type[Adapter]:
    if name not in REGISTRY:
        raise FacevlmError(f"unknown source {name!r}; known: {', '.join(REGISTRY)}")
    module, attr = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), attr)


class SourceReader:
    """Iterates an adapter's records for one split (optionally the first `limit`), counting as it goes."""

    def __init__(self, adapter: Adapter, split: str, limit: int | None = None, strict: bool = False):
        self.adapter, self.split, self.limit = adapter, split, limit
        self.summary = ImportSummary(adapter.name, split, strict=strict)

    def __iter__(self) -> Iterator[FaceRecord]:
        if self.limit is not None and self.limit <= 0:
            return
        for record in self.adapter.records(self.split, self.summary):
            self.summary.loaded += 1
            yield record
            if self.limit is not None and self.summary.loaded >= self.limit:
                return


def open_source(
    name: str,
    root: str | Path | None,
    split: str = "train",
    *,
    limit: int | None = None,
    strict: bool = False,
    **options: Any,
) -> SourceReader:
    """Open dataset `name` at `root` for `split`; `options` are the adapter's keyword options."""
    cls = get_adapter(name)
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "root")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise FacevlmError(f"{name}: unknown option(s) {', '.join(unknown)}; options: {', '.join(allowed) or 'none'}")
    if root is None and inspect.signature(cls.__init__).parameters["root"].default is inspect.Parameter.empty:
        raise FacevlmError(f"{name}: a dataset root is required")  # samples/real default to the fetched assets
    adapter = cls(root, **options) if root is not None else cls(**options)
    if split not in adapter.splits:
        raise FacevlmError(f"{cls.title} has no split {split!r}; it has {', '.join(adapter.splits)}")
    return SourceReader(adapter, split, limit=limit, strict=strict)


__all__ = ["REGISTRY", "Adapter", "ImportSummary", "SourceReader", "get_adapter", "open_source"]
