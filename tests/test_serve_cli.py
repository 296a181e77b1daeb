"""``glassbox serve`` on the command line: lean to register, one-line errors, loopback by default."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from glassbox.errors import GlassboxError
from glassbox.serve.run import bind, is_loopback

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_registering_the_cli_imports_no_web_stack(tmp_path: Path) -> None:
    code = (
        "import sys, json\nimport glassbox.cli, glassbox.oracle.targets\nglassbox.cli._register()\n"
        "print(json.dumps([m for m in ('fastapi', 'uvicorn', 'httpx', 'starlette') if m in sys.modules]))"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    probe = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == []


def test_without_the_serve_extra_serve_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    code, _, err = run_cli("serve", "random:4-5-1")
    assert code == 2
    assert err == (
        "glassbox: error: glassbox serve needs uvicorn, which is not installed: "
        "pip install 'glassbox[serve]'\n"
    )


def test_model_errors_are_one_line() -> None:
    code, _, err = run_cli("serve", "http://127.0.0.1:1")
    assert code == 2 and err.count("\n") == 1 and "needs a model, not the address" in err
    code, _, err = run_cli("serve", "no/such/file")
    assert code == 2 and err.count("\n") == 1 and "no such file or directory" in err


def test_loopback_and_a_taken_port() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.4.5", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.2", "::", "example.com"))
    sock = bind("127.0.0.1", 0)
    try:
        with pytest.raises(GlassboxError, match=r"cannot listen on 127.0.0.1:\d+"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


def test_a_non_loopback_host_is_warned_about(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    cmd = [sys.executable, "-m", "glassbox.cli", "serve", "random:4-5-1", "--host", "0.0.0.0"]
    cmd += ["--state", ":memory:"]
    proc = subprocess.Popen(
        [*cmd, "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("http://0.0.0.0:")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "warning: listening on 0.0.0.0, which is not loopback" in err
    assert "(and no --api-key is set)" in err


def test_label_only_on_a_one_output_model_is_refused_at_start() -> None:
    code, _, err = run_cli("serve", "random:4-5-1", "--label-only", "--state", ":memory:")
    assert code == 2 and err.count("\n") == 1
    assert "--label-only needs a model with at least two outputs: random:4-5-1 has one" in err


def test_help_states_the_body_limit_the_state_file_and_the_flags() -> None:
    code, out, _ = run_cli("serve", "--help")
    text = " ".join(out.split())
    assert code == 0
    assert "--max-body MIB Largest request body, in MiB (lowered from ~200 MiB" in text
    assert "[default: 16; x>=1]" in text
    assert "$XDG_DATA_HOME/glassbox/serve/" in text and "--docs" in text and "--log-json" in text


def test_the_default_state_file_is_one_per_model_in_the_user_data_folder(monkeypatch, tmp_path):
    from glassbox.serve.run import default_state

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    a, b = default_state("random:4-5-3"), default_state("random:4-5-3", seed=1)
    assert a.parent == tmp_path / "glassbox" / "serve" and a.name.startswith("random_4-5-3-")
    assert a != b and a == default_state("random:4-5-3") and a.suffix == ".sqlite"


def test_a_state_path_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "state.sqlite"
    bad.write_text("not sqlite at all, " * 100)
    code, _, err = run_cli("serve", "random:4-5-3", "--state", str(bad))
    assert code == 2 and err.count("\n") == 1
    assert f"--state {bad}: cannot use it as the service's state file" in err
