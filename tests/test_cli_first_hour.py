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


def _cli(*args: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from glassbox.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_verify_and_net_info_read_onnx_files(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    a, b = str(tmp_path / "a.safetensors"), str(tmp_path / "a.onnx")
    assert _cli("net", "new", "6-5-1", "--seed", "3", "--out", a)[0] == 0
    assert _cli("net", "export", a, "--onnx", b)[0] == 0
    code, out, err = _cli("net", "info", b)
    assert code == 0 and "6-5-1" in out and not err
    code, out, _ = _cli("verify", b, a, "--samples", "64")
    assert code == 0 and "functionally equivalent" in out


def test_verify_of_nets_of_different_depths_says_they_differ_exit_1(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")
    assert _cli("net", "new", "6-5-1", "--out", a)[0] == 0
    assert _cli("net", "new", "6-5-4-1", "--out", b)[0] == 0
    code, out, err = _cli("verify", a, b)
    assert code == 1 and not err
    assert out.splitlines() == [out.strip()] and "different depths" in out
    assert out.startswith("not equivalent")


@pytest.mark.parametrize("spec", ["random:10-5-1:", "random:10-5-1:relu,", "random:10-5-1:,"])
def test_a_spec_with_an_empty_option_is_refused_in_one_line(tmp_path: Path, spec: str) -> None:
    code, _, err = _cli("extract", spec, "--out", str(tmp_path / "x"))
    assert code == 2 and len(err.splitlines()) == 1 and "empty option" in err
    assert not (tmp_path / "x").exists()
