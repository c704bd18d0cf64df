"""Load YAML recipes into typed dataclasses.

Recipes (data/*.yaml, finetune/*.yaml, eval/*.yaml, serve/*.yaml) are the user-facing interface of every
stage. Unknown keys are an error, not silently ignored, so a typo in a recipe cannot train the wrong model.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from facevlm.errors import FacevlmError

T = TypeVar("T")


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FacevlmError(f"{path}: no such recipe file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f":{line + 1}" if line is not None else ""
        raise FacevlmError(f"{path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise FacevlmError(f"{path}: a recipe must be a YAML mapping")
    return data


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a mapping, recursing into nested dataclass fields."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise FacevlmError(
            f"{where or cls.__name__}: unknown key(s) {', '.join(unknown)}; expected some of {', '.join(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where or cls.__name__}.{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise FacevlmError(f"{where or cls.__name__}: {exc}") from None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return from_dict(arg, value, where)
        return value
    if origin is list and isinstance(value, list):
        (arg,) = typing.get_args(tp) or (Any,)
        return [_coerce(arg, v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def load_recipe(cls: type[T], path: str | Path) -> T:
    return from_dict(cls, read_yaml(path), where=str(path))


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)
