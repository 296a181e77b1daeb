"""Frozen dataclass configs that round-trip through JSON, saved beside every result."""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from typing import Any, TypeVar

from glassbox.errors import GlassboxError
from glassbox.io import read_json, write_json

C = TypeVar("C")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain dict of a (possibly nested) dataclass config, tuples as lists."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"expected a dataclass instance, got {type(config).__name__}")
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def config_from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild a dataclass config from :func:`config_to_dict` output; unknown keys are an error."""
    if not isinstance(data, dict):
        raise GlassboxError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise GlassboxError(
            f"{cls.__name__}: unknown key(s) {', '.join(unknown)}; valid keys are {', '.join(sorted(names))}"
        )
    kwargs = {k: _typed(hints[k], v, f"{cls.__name__}: {k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise GlassboxError(f"{cls.__name__}: {exc}") from None


#: What a scalar field holds, said in a message: a bool is no number, a NaN no float.
_KINDS = {bool: "true or false", int: "a whole number", float: "a finite number", str: "a string"}


def _scalar_ok(hint: Any, value: Any) -> bool:
    if hint is bool or isinstance(value, bool):
        return hint is bool and isinstance(value, bool)
    if hint is int:
        return isinstance(value, int)
    if hint is float:
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    return isinstance(value, str)


def _fits(hint: Any, value: Any) -> bool:
    """Whether ``value`` has the shape of ``hint`` (one arm of a union)."""
    if typing.get_origin(hint) is tuple:
        return isinstance(value, list)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    return _scalar_ok(hint, value) if hint in _KINDS else True


def _typed(hint: Any, value: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in args if a is not type(None)]
        chosen = next((a for a in options if _fits(a, value)), options[0])
        return _typed(chosen, value, name)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return config_from_dict(hint, value)  # type: ignore[arg-type]
    if origin is tuple and isinstance(value, list):
        inner = args[0] if args else Any
        return tuple(_typed(inner, v, name) for v in value)
    # NaN, infinities and numbers of the wrong kind would otherwise reach the run itself.
    if hint in _KINDS and not _scalar_ok(hint, value):
        raise GlassboxError(f"{name} must be {_KINDS[hint]}, got {value!r}")
    return value


def save_config(config: Any, path: str | os.PathLike[str]) -> None:
    """Write a config as JSON (atomically)."""
    write_json(path, config_to_dict(config))


def load_config(cls: type[C], path: str | os.PathLike[str]) -> C:
    """Read a config written by :func:`save_config`."""
    return config_from_dict(cls, read_json(path))
