"""A new user's first hour: what interrupting the demo leaves, and the one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_a_demo_stopped_by_sigterm_leaves_no_empty_run_folder(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; from glassbox.cli import main; sys.exit(main())",
         "demo", "--quiet", "--in-process"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    runs = tmp_path / "runs"
    deadline = time.monotonic() + 120
    while not (runs.is_dir() and any(runs.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runs.is_dir() and any(runs.iterdir()), "the demo reserved no folder"
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode != 0
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) <= 1, stderr
    assert list(runs.iterdir()) == [], "an empty (or half-written) run folder was left"
