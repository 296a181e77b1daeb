"""Writing files so that a failure never leaves a half-written one, and JSON that any reader loads."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp (and some writers) create 0600 files; give the result ordinary permissions.
        umask = os.umask(0)
        os.umask(umask)
        tmp_path.chmod(0o666 & ~umask)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def to_jsonable(value: Any) -> Any:
    """Convert NumPy values and non-finite floats into standard JSON values.

    JSON has no NaN or Infinity: any non-finite float left here becomes ``null``
    ("undefined"). log2 error figures are converted before they get here: an exact
    zero (log2 ``-inf``) is written as -1074 by
    :func:`glassbox.extract.verify.log2_json`. See docs/json.md.
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def dumps_json(value: Any) -> str:
    """Serialise to standard JSON (never NaN/Infinity literals), indented for people."""
    return json.dumps(to_jsonable(value), indent=2, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike[str], value: Any) -> None:
    """Write ``value`` as standard JSON atomically."""
    text = dumps_json(value)
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, turning a missing or malformed file into a one-line GlassboxError."""
    from glassbox.errors import GlassboxError

    p = Path(path)
    if not p.is_file():
        raise GlassboxError(f"{p}: no such file")
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GlassboxError(f"{p}: not valid JSON ({exc.__class__.__name__}: {exc})") from None


def read_safetensors(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read every tensor and the metadata of a safetensors file; unreadable files are a GlassboxError."""
    from safetensors import SafetensorError, safe_open

    from glassbox.errors import GlassboxError

    p = Path(path)
    if not p.is_file():
        raise GlassboxError(f"{p}: no such file")
    try:
        with safe_open(str(p), framework="numpy") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise GlassboxError(f"{p}: not a readable safetensors file ({exc})") from None
    return tensors, metadata
