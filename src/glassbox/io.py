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

from glassbox.errors import GlassboxError


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
        tmp_path.chmod(0o666 & ~_umask())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def to_jsonable(value: Any) -> Any:
    """Convert NumPy values and non-finite floats into standard JSON values.

    JSON has no NaN or Infinity: any non-finite float left here becomes ``null``
    ("undefined"). log2 error figures are converted before they get here: an exact
    zero (log2 ``-inf``) is written as -1074 by
    :func:`glassbox.verify.compare.log2_json`. See docs/json.md.
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


#: safetensors' names of the dtypes glassbox writes.
SAFETENSORS_DTYPES = {
    "float64": "F64",
    "float32": "F32",
    "int64": "I64",
    "int32": "I32",
    "bool": "BOOL",
}


def write_safetensors(
    path: str | os.PathLike[str], tensors: dict[str, np.ndarray], metadata: dict[str, str]
) -> None:
    """Write a safetensors file atomically, byte for byte the same for the same tensors.

    The header is JSON with sorted keys and the tensors are laid out in name order (the
    safetensors library writes its metadata in hash order, so two saves of one net differed).
    """
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        kind = SAFETENSORS_DTYPES.get(array.dtype.name)
        if kind is None:
            raise GlassboxError(f"cannot save tensor {name} of dtype {array.dtype} as safetensors")
        blob = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": kind,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)  # the data starts on an 8-byte boundary
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        for blob in blobs:
            f.write(blob)


# ------------------------------------------------------------ checks before the work
def check_writable(folder: str | os.PathLike[str], flag: str = "--out") -> None:
    """Raise a one-line GlassboxError unless ``folder`` exists or can be created, and is writable.

    Probes the nearest existing ancestor by creating (and removing) a temporary folder in
    it, so a read-only or impossible place (e.g. under /proc) is refused before any work.
    """
    target = Path(folder)
    ancestor = target.absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise GlassboxError(
            f"{flag} {target}: {ancestor} is a file, not a folder; choose another {flag}"
        )
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".glassbox-probe.", dir=ancestor))
    except OSError as exc:
        raise GlassboxError(
            f"{flag} {target}: cannot write in {ancestor} ({exc.strerror}); choose another {flag}"
        ) from None


def check_out_dir(
    out: str | os.PathLike[str], overwrite: bool, marker: str, flag: str = "--out"
) -> None:
    """Refuse an ``out`` folder that is a file, non-empty without ``overwrite``, or unwritable.

    With ``overwrite``, a non-empty folder is replaced only if it holds ``marker`` (a file
    that glassbox itself writes there), so a mistyped path never wipes someone's folder.
    """
    target = Path(out)
    if target.exists():
        if not target.is_dir():
            raise GlassboxError(
                f"{flag} {target} exists and is not a folder; choose another {flag}"
            )
        if any(target.iterdir()):
            if not overwrite:
                raise GlassboxError(
                    f"{flag} {target} already exists and is not empty; choose another {flag} or pass --overwrite"
                )
            if not (target / marker).is_file():
                raise GlassboxError(
                    f"{flag} {target} holds no {marker}, so glassbox did not write it; "
                    "refusing to replace it"
                )
    check_writable(target, flag)


def check_out_file(out: str | os.PathLike[str], overwrite: bool, flag: str = "--out") -> None:
    """Refuse an output file that exists (unless ``overwrite``), is a folder, or lies in a missing or unwritable folder."""
    target = Path(out)
    if target.is_dir():
        raise GlassboxError(f"{flag} {target} is a folder; give a file name")
    if target.exists() and not overwrite:
        raise GlassboxError(f"{flag} {target} exists; choose another {flag} or pass --overwrite")
    parent = target.parent
    if not parent.is_dir():
        raise GlassboxError(
            f"{flag} {target}: folder {parent} does not exist; create it first (mkdir -p {parent})"
        )
    check_writable(parent, flag)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def normalize_modes(folder: str | os.PathLike[str]) -> None:
    """Give every file under ``folder`` mode 0666 and every folder 0777, less the umask.

    Some writers (safetensors, mkstemp, mkdtemp) create private 0600/0700 entries; results
    a user may share are ordinary files.
    """
    mask = _umask()
    root = Path(folder)
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


@contextmanager
def staged_dir(out: str | os.PathLike[str], overwrite: bool, flag: str = "--out") -> Iterator[Path]:
    """Yield a fresh folder beside ``out``; when the block succeeds, move it into place as ``out``.

    A failure leaves nothing half-written. A folder that another process filled meanwhile
    is replaced only with ``overwrite``; otherwise it is a one-line error.
    """
    import shutil

    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; results are ordinary folders
    try:
        yield tmp
        normalize_modes(tmp)
        if target.exists() and any(target.iterdir()):
            if not overwrite:
                raise GlassboxError(
                    f"{flag} {target} was filled by another process while this one ran; "
                    f"choose another {flag}"
                )
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
