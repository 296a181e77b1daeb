"""Optional parts of glassbox: a one-line error naming the install command when one is missing."""

from __future__ import annotations

import importlib.util

from glassbox.errors import GlassboxError

#: How to install each optional dependency (torch first: the CPU wheel, see the README).
INSTALL = {
    "torch": "pip install torch==2.13.0 && pip install 'glassbox[toy]'",
    "onnx": "pip install 'glassbox[onnx]'",
    "onnxruntime": "pip install 'glassbox[onnx]'",
    "fastapi": "pip install 'glassbox[serve]'",
    "uvicorn": "pip install 'glassbox[serve]'",
    "httpx": "pip install 'glassbox[serve]'",
    "distributed": "pip install 'glassbox[dask]' (in a checkout: pip install -e '.[dask]')",
}


def require(module: str, what: str) -> None:
    """Raise a one-line GlassboxError if ``module`` is not installed; ``what`` names the task needing it."""
    if importlib.util.find_spec(module) is None:
        raise GlassboxError(
            f"{what} needs {module}, which is not installed: {INSTALL.get(module, f'pip install {module}')}"
        )
