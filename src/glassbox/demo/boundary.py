"""Where the demo's attack meets its target: over HTTP to a separate process, or in-process.

By default the trained net is saved to a temporary file and served by ``glassbox serve`` in
a child process on a free loopback port; the attack holds only an
:class:`~glassbox.oracle.http_client.HttpOracle`, so nothing but HTTP answers reaches it.
``in_process`` (``glassbox demo --in-process``) keeps the faster in-process oracle. Without
the ``serve`` extra the demo falls back to in-process and says so.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glassbox.extract.attack import ExtractConfig, ExtractionResult, extract
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import net_oracle
from glassbox.report.sections import HTTP

IN_PROCESS = "in-process"
SERVE_MODULES = ("fastapi", "uvicorn", "httpx")


def can_serve() -> bool:
    """Whether the ``serve`` extra (FastAPI, uvicorn, httpx) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in SERVE_MODULES)


def attack(
    truth: ReLUNet,
    config: ExtractConfig,
    budget: int | None,
    *,
    in_process: bool,
    progress: bool,
    say: Callable[[str], None],
    threads: int | None = None,
) -> tuple[ExtractionResult, dict[str, Any]]:
    """Extract ``truth`` across the chosen boundary; the result and the facts for extraction.json.

    ``threads``: BLAS threads of the attack and of the service (default: by their shapes).
    """
    if not in_process and not can_serve():
        say(
            "the serve extra is not installed (pip install 'glassbox[serve]'): attacking in-process"
        )
        in_process = True
    if in_process:
        return extract(net_oracle(truth, budget), config, progress=progress, threads=threads), {
            "boundary": IN_PROCESS
        }
    from glassbox.oracle.http_client import HttpOracle
    from glassbox.serve.process import running_service

    with tempfile.TemporaryDirectory(prefix="glassbox-demo-") as tmp:
        path = Path(tmp) / "target.safetensors"
        truth.save(path)
        options = ("--threads", str(threads)) if threads is not None else ()
        with running_service(str(path), *options, log=Path(tmp) / "serve.log") as url:
            say(
                f"      the target is served at {url} by a separate process; the attack sees only HTTP"
            )
            with HttpOracle(url, budget) as oracle:
                result = extract(oracle, config, progress=progress, threads=threads)
                import httpx

                served = httpx.get(f"{url}/v1/usage", timeout=30).json()["queries"]
    return result, {"boundary": HTTP, "service_queries": int(served)}
