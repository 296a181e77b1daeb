"""Frozen dataclass configs that round-trip through JSON, saved beside every result."""

from __future__ import annotations

import dataclasses
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
    kwargs = {k: _typed(hints[k], v) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise GlassboxError(f"{cls.__name__}: {exc}") from None


def _typed(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        for arg in args:
            if arg is not type(None):
                return _typed(arg, value)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return config_from_dict(hint, value)  # type: ignore[arg-type]
    if origin is tuple and isinstance(value, list):
        inner = args[0] if args else Any
        return tuple(_typed(inner, v) for v in value)
    return value


def save_config(config: Any, path: str | os.PathLike[str]) -> None:
    """Write a config as JSON (atomically)."""
    write_json(path, config_to_dict(config))


def load_config(cls: type[C], path: str | os.PathLike[str]) -> C:
    """Read a config written by :func:`save_config`."""
    return config_from_dict(cls, read_json(path))
