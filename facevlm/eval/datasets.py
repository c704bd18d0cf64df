"""Evaluation datasets: face crops plus the labels tasks score against, from any record source.

Sources: a stored dataset (`facevlm data build` output), a real dataset read through its adapter
(CelebA, FairFace, FER2013, RAF-DB, LFW, ...; root from the suite or an environment variable), the
synthetic renderer on the fly, the real sample photos, or an in-memory list of FaceRecords. Only
ground-truth labels are used by default: scoring a model against another model's pseudo-labels would
measure agreement, not accuracy.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from facevlm.errors import FacevlmError

CROPS = ("face", "expression")


@dataclass
class DatasetSpec:
    """One `datasets:` entry of a suite."""

    name: str
    source: str  # store | adapter | synth | samples | records
    ref: str = ""  # stored dataset name/path, or adapter name
    root: str = ""  # adapter root; "$VAR" / "${VAR}" are expanded
    split: str = "test"
    train_split: str = ""  # for linear probes
    limit: int = 0  # 0 = all
    train_limit: int = 0  # cap on the linear-probe train split (0 = `limit`); probes saturate long before 20k
    seed: int = 0
    origin: str = "gt"  # gt | any: which attribute labels count as truth
    # Face crop margin (of the box size, each side). Score a FaceCLIP on the crop it was trained on: the
    # default recipe trains at 0.3 (`crop_margin` in its facevlm_clip.json); None = FaceCLIP's default.
    crop_margin: float | None = None
    # Which crop the images are: "face" = the training crop rule above (FaceCLIP, FaceVLM), "expression" = the
    # face pipeline's input to the expression expert (vision.expression.expression_crop: fer's square crop, what
    # the gallery labels with); an expert scored on another crop is not the expert the product runs
    crop: str = "face"
    # attribute -> dotted path of a boolean in the record's meta, "!" negating it: ground truth a schema
    # attribute cannot hold, e.g. the real set's "any facial hair" as No_Beard: "!hand_labels.facial_hair"
    # (the schema only says No_Beard when there is no facial hair at all; data/cards/real.md)
    meta_labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # passed to the source (synth size, adapter options)

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise FacevlmError(f"dataset {self.name}: crop {self.crop!r}; expected one of {', '.join(CROPS)}")


@dataclass
class EvalDataset:
    """Face crops (PIL) with per-item labels as aligned arrays ("" = unlabelled)."""

    name: str
    split: str
    images: list[Any]
    ids: list[str]
    attributes: dict[str, np.ndarray]
    identities: np.ndarray
    captions: list[list[str]]
    fingerprint: str

    def __len__(self) -> int:
        return len(self.images)

    def labels(self, attribute: str) -> np.ndarray:
        return self.attributes.get(attribute, np.full(len(self), "", dtype=object))

    def with_images(self, images: list[Any], tag: str) -> EvalDataset:
        """Same labels, transformed images (robustness); the fingerprint records the transform."""
        fp = hashlib.sha256(f"{self.fingerprint}|{tag}".encode()).hexdigest()[:16]
        return replace(self, images=images, fingerprint=fp)


def meta_label(meta: dict[str, Any], path: str) -> str:
    """The "true"/"false" of the boolean at dotted `path` in `meta` ("!" prefix: negated), "" when absent."""
    negate, keys = path.startswith("!"), path.lstrip("!").split(".")
    value: Any = meta
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, bool):
        return ""
    return "true" if value != negate else "false"


def from_records(
    records: Iterable[Any],
    name: str,
    split: str,
    origin: str = "gt",
    limit: int = 0,
    crop_margin: float | None = None,
    meta_labels: dict[str, str] | None = None,
    crop_kind: str = "face",
) -> EvalDataset:
    """Build an EvalDataset from FaceRecords (ground-truth attributes only unless origin="any"; `meta_labels`
    replace attributes by booleans of the record's meta, see DatasetSpec). Faces are cut by the data
    engine's training crop rule (`facevlm.vision.crop`) with `crop_margin`, or with `crop_kind="expression"`
    as the face pipeline cuts them for the expression expert."""
    from facevlm.vision.crop import TRAINING_MARGIN

    margin = TRAINING_MARGIN if crop_margin is None else crop_margin
    images, ids, idents, caps = [], [], [], []
    attrs: dict[str, list[str]] = {}
    tag = "" if crop_kind == "face" else f"|{crop_kind}"
    h = hashlib.sha256(f"{name}|{split}|{origin}|{margin}{tag}".encode())
    for i, rec in enumerate(records):
        if limit and i >= limit:
            break
        crop = _cut(rec, crop_kind, margin)
        images.append(crop)
        ids.append(rec.id)
        idents.append(rec.identity or "")
        caps.append(list(rec.captions))
        n = len(ids) - 1
        for a in rec.attributes:
            if (origin == "gt" and a.origin != "gt") or a.name in (meta_labels or {}):
                continue
            attrs.setdefault(a.name, [""] * n).append(a.value)
        for attribute, path in (meta_labels or {}).items():
            attrs.setdefault(attribute, [""] * n).append(meta_label(rec.meta or {}, path))
        for values in attrs.values():
            if len(values) < len(ids):
                values.append("")
        h.update(rec.id.encode())
        h.update(hashlib.sha256(np.asarray(crop).tobytes()).digest())
        h.update(repr(sorted((a.name, a.value, a.origin) for a in rec.attributes)).encode())
        h.update(f"{rec.identity}|{rec.captions}|{sorted((meta_labels or {}).items())}".encode())
    if not images:
        raise FacevlmError(f"dataset {name} [{split}]: no records")
    return EvalDataset(
        name,
        split,
        images,
        ids,
        {k: np.asarray(v, dtype=object) for k, v in attrs.items()},
        np.asarray(idents, dtype=object),
        caps,
        h.hexdigest()[:16],
    )


def _cut(record: Any, crop_kind: str, margin: float) -> Any:
    from facevlm.data.store import face_crop

    if crop_kind == "face" or record.box is None:
        return face_crop(record, margin=margin)
    from PIL import Image

    from facevlm.image import open_image
    from facevlm.vision.expression import expression_crop

    return Image.fromarray(expression_crop(open_image(record.image), record.box))


# ---------------------------------------------------------------- sources
def _expand(root: str, name: str) -> str:
    expanded = os.path.expandvars(os.path.expanduser(root))
    if not expanded or "$" in expanded:
        raise FacevlmError(
            f"dataset {name}: root {root!r} is not set (export the environment variable or edit the suite's `root:`)"
        )
    return expanded


def adapter_class(name: str) -> type:
    """The adapter whose `name` is `name`, from module facevlm.data.adapters.<name>."""
    from facevlm.data.adapters.base import Adapter

    try:
        module = importlib.import_module(f"facevlm.data.adapters.{name}")
    except ModuleNotFoundError:
        raise FacevlmError(f"no dataset adapter {name!r} (facevlm/data/adapters/{name}.py)") from None
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, Adapter) and getattr(obj, "name", None) == name:
            return obj
    raise FacevlmError(f"facevlm.data.adapters.{name} defines no adapter named {name!r}")


def _records(spec: DatasetSpec, split: str) -> Iterable[Any]:
    if spec.source == "store":
        from facevlm.data.store import iter_records, load_records

        return iter_records(load_records(spec.ref or spec.name, split or None))
    if spec.source == "adapter":
        from facevlm.data.adapters.base import ImportSummary

        adapter = adapter_class(spec.ref or spec.name)(_expand(spec.root, spec.name), **spec.options)
        return adapter.records(split, ImportSummary(adapter.name, split))
    if spec.source == "synth":
        return _synth_records(spec, split)
    if spec.source == "samples":
        from facevlm.eval.samples import sample_records

        return sample_records(**spec.options)
    raise FacevlmError(
        f"dataset {spec.name}: unknown source {spec.source!r}; expected store, adapter, synth or samples"
    )


def _synth_records(spec: DatasetSpec, split: str) -> Iterable[Any]:
    """Render a small synthetic set on the fly (data engine renderer + template captions), split
    identity-disjointly: identities whose index is a multiple of `1/test_fraction` (rounded) go to
    "test", the rest to "train". Options: n_identities, per_identity, size, captions,
    test_fraction, workers."""
    from facevlm.data.caption import CaptionConfig, caption_records
    from facevlm.data.synth import SynthConfig, generate

    opts = dict(spec.options)
    every = max(2, round(1.0 / float(opts.pop("test_fraction", 0.5))))
    n_captions = int(opts.pop("captions", 2))
    workers = int(opts.pop("workers", 1))
    try:
        cfg = SynthConfig(seed=spec.seed, **opts)
    except TypeError as exc:
        raise FacevlmError(f"dataset {spec.name}: bad synth option ({exc})") from None
    cfg.validate()
    index = {}

    def tagged(records: Iterable[Any]) -> Iterator[Any]:
        for rec in records:
            n = index.setdefault(rec.identity, len(index))
            rec.split = "test" if n % every == 0 else "train"
            if rec.split == split:
                yield rec

    return caption_records(tagged(generate(cfg, workers=workers)), CaptionConfig(n=n_captions, seed=spec.seed))


def load_dataset(spec: DatasetSpec, split: str | None = None) -> EvalDataset:
    split = spec.split if split is None else split
    limit = spec.train_limit if split == spec.train_split and spec.train_limit else spec.limit
    records = _records(spec, split)
    return from_records(records, spec.name, split, spec.origin, limit, spec.crop_margin, spec.meta_labels, spec.crop)


def class_labels(values: np.ndarray, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(item indices with a label in `classes`, their class indices)."""
    index = {c: i for i, c in enumerate(classes)}
    items = np.asarray([i for i, v in enumerate(values) if v in index], dtype=np.int64)
    return items, np.asarray([index[values[i]] for i in items], dtype=np.int64)
