"""The service in a child process on a free loopback port: for the demo, the tests and benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import glassbox
from glassbox.errors import GlassboxError

#: Seconds a child service may take to start (imports, building the model).
START_TIMEOUT = 120.0


def _env() -> dict[str, str]:
    # The child must import this same glassbox (a source checkout may not be the installed one).
    src = str(Path(glassbox.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": src + (os.pathsep + path if path else "")}


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    line: list[str] = []
    reader = threading.Thread(
        target=lambda: line.append(proc.stdout.readline() if proc.stdout else "")
    )
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    return line[0].strip() if line else ""


@contextmanager
def running_service(
    model: str, *options: str, log: Path | None = None, timeout: float = START_TIMEOUT
) -> Iterator[str]:
    """Run ``glassbox serve MODEL --port 0 OPTIONS`` in a child process; yield its address.

    The child's log goes to ``log`` (default: discarded). Its usage is kept in memory only
    unless ``options`` name a ``--state`` file. It is stopped (SIGTERM, then SIGKILL) when
    the block ends, however it ends.
    """
    state = () if "--state" in options else ("--state", ":memory:")
    cmd = [sys.executable, "-m", "glassbox.cli", "serve", model, "--port", "0", *state, *options]
    with open(log or os.devnull, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=_env())
        try:
            url = _first_line(proc, timeout)
            if not url.startswith("http://"):
                proc.kill()
                proc.wait()
                where = f"; see {log}" if log else ""
                raise GlassboxError(
                    f"the service for {model} did not start (exit status {proc.returncode}){where}"
                )
            yield url
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout:
                proc.stdout.close()
