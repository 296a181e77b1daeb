"""Checkpoints and --resume: killed with SIGKILL at a random moment, an extraction finishes as if never stopped."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from glassbox.cli import main
from glassbox.errors import GlassboxError
from glassbox.extract.attack import extract
from glassbox.mlp import ReLUNet
from glassbox.oracle.checkpoint import CHECKPOINT, MANIFEST, CheckpointOracle
from glassbox.oracle.core import FunctionOracle, net_oracle
from glassbox.serve.process import running_service
from glassbox.verify.compare import verify

SRC = str(Path(__file__).resolve().parents[1] / "src")
DEEP = "10-10-10-1"


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (the CLI's flush is not called)."""


def dying_oracle(net: ReLUNet, after: int) -> FunctionOracle:
    asked = [0]

    def f(X: np.ndarray) -> np.ndarray:
        asked[0] += len(X)
        if asked[0] > after:
            raise Killed
        return net.forward(X)

    return FunctionOracle(f, net.input_dim, net.output_dim)


def test_a_replayed_checkpoint_gives_the_same_net_and_counts(tmp_path: Path) -> None:
    net = ReLUNet.random(DEEP, seed=0)
    reference = extract(net_oracle(net))
    key = {"target": "t"}
    first = CheckpointOracle(dying_oracle(net, reference.queries // 2), tmp_path, key, every=0.01)
    with pytest.raises(Killed):
        extract(first)
    saved = json.loads((tmp_path / MANIFEST).read_text())
    assert 0 < saved["queries"] <= reference.queries // 2 and saved["batches"] > 10
    inner = net_oracle(net)
    again = CheckpointOracle(inner, tmp_path, key, resume=True, every=0.01)
    result = extract(again)
    assert result.success and np.array_equal(result.net.weights[0], reference.net.weights[0])
    assert (
        result.queries == reference.queries
        and result.queries_by_phase == reference.queries_by_phase
    )
    assert (
        again.replayed == saved["queries"] and inner.queries == reference.queries - saved["queries"]
    )


def test_a_replay_that_goes_another_way_asks_the_real_oracle(tmp_path: Path) -> None:
    net = ReLUNet.random("4-5-3", seed=0)
    rec = CheckpointOracle(net_oracle(net), tmp_path, {"k": 1})
    X = np.arange(8.0).reshape(2, 4)
    rec.query(X)
    rec.query(X + 1)
    rec.flush()
    inner = net_oracle(net)
    again = CheckpointOracle(inner, tmp_path, {"k": 1}, resume=True)
    assert np.array_equal(again.query(X), net.forward(X)) and inner.queries == 0
    assert np.array_equal(again.query(X - 1), net.forward(X - 1)) and inner.queries == 2
    again.query(X + 1)  # recorded, but after the divergence: asked again
    assert inner.queries == 4 and again.replayed == 2
    again.flush()
    assert json.loads((tmp_path / MANIFEST).read_text())["batches"] == 3
    with pytest.raises(GlassboxError, match="made by another extraction"):
        CheckpointOracle(inner, tmp_path, {"k": 2}, resume=True)


def test_the_out_folder_says_what_to_do_with_a_checkpoint(tmp_path: Path, capsys) -> None:
    out = tmp_path / "x"
    (out / CHECKPOINT).mkdir(parents=True)
    (out / CHECKPOINT / MANIFEST).write_text("{}")
    assert main(["extract", "random:4-5-1", "--out", str(out)]) == 2
    assert "pass --resume to go on from it, or --overwrite" in capsys.readouterr().err
    assert main(["extract", "random:4-5-1", "--out", str(out), "--resume"]) == 2
    assert "unreadable checkpoint (format None, expected 1)" in capsys.readouterr().err
    assert main(["extract", "random:4-5-1", "--out", str(out), "--overwrite"]) in (0, 1)
    assert not (out / CHECKPOINT).exists() and (out / "extraction.json").is_file()
    assert main(["extract", "random:4-5-1", "--out", str(out), "--resume"]) == 2
    assert "holds a finished extraction; there is nothing to resume" in capsys.readouterr().err


def _extract(url: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "glassbox.cli", "extract", url, "--out", str(out), *extra]
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _checkpointed_queries(out: Path) -> int:
    try:
        return int(json.loads((out / CHECKPOINT / MANIFEST).read_text())["queries"])
    except (OSError, ValueError, KeyError):
        return 0


def test_sigkill_at_a_random_moment_then_resume_over_http(tmp_path: Path) -> None:
    net = ReLUNet.random(DEEP, seed=0)
    reference = extract(net_oracle(net))
    rng = random.Random(os.getpid() ^ time.time_ns())
    out = tmp_path / "x"
    with running_service(f"random:{DEEP}") as url:
        run = _extract(url, out, "--checkpoint-every", "0.05")
        mark = rng.uniform(0.15, 0.7) * reference.queries
        deadline = time.monotonic() + 240
        while _checkpointed_queries(out) < mark and run.poll() is None:
            assert time.monotonic() < deadline, "the run never reached the kill point"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=60)
        assert run.returncode == -signal.SIGKILL, "the run ended before the kill"
        assert (out / CHECKPOINT / MANIFEST).is_file()
        resumed = _extract(url, out, "--resume")
        stdout, stderr = resumed.communicate(timeout=300)
        spent = httpx.get(f"{url}/v1/usage", timeout=10).json()["queries"]
    assert resumed.returncode == 0, stderr
    assert "resumed: " in stdout and " of the queries answered from the checkpoint" in stdout
    record = json.loads((out / "extraction.json").read_text())
    assert record["queries"] == reference.queries and record["resumed"]["replayed_queries"] > 0
    assert not (out / CHECKPOINT).exists()
    recovered = ReLUNet.load(out / "recovered.safetensors")
    assert verify(recovered, net, n_samples=2048, seed=0).max_weight_error_log2 < -25
    assert verify(recovered, reference.net, n_samples=2048, seed=0).max_weight_error_log2 < -40
    # Killed and resumed, the service answered at most 10% more than one uninterrupted run.
    print(
        f"killed at {mark:.0f}: spent {spent} for {reference.queries} ({spent / reference.queries:.3f}x)"
    )
    assert reference.queries <= spent <= 1.10 * reference.queries, (spent, reference.queries)


def test_a_service_that_dies_mid_run_is_resumed_against_its_restart(tmp_path: Path) -> None:
    net = ReLUNet.random(DEEP, seed=0)
    reference = extract(net_oracle(net))
    out = tmp_path / "x"
    with running_service(f"random:{DEEP}") as url:
        run = _extract(url, out, "--checkpoint-every", "0.05")
        deadline = time.monotonic() + 240
        while _checkpointed_queries(out) < 0.3 * reference.queries and run.poll() is None:
            assert time.monotonic() < deadline, "the run never got a third of the way"
            time.sleep(0.01)
    # The service is gone (stopped as the block ended); the run gives up after its retries.
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 2, stderr
    assert f"the service at {url} did not answer POST /v1/predict after 9 tries" in stderr
    assert "rerun with --resume to go on" in stderr
    with running_service(f"random:{DEEP}") as restarted:  # another port: the URL may change
        resumed = _extract(restarted, out, "--resume")
        stdout, stderr = resumed.communicate(timeout=300)
        spent = httpx.get(f"{restarted}/v1/usage", timeout=10).json()["queries"]
    assert resumed.returncode == 0, stderr
    record = json.loads((out / "extraction.json").read_text())
    replayed = record["resumed"]["replayed_queries"]
    # Every answer of the first run was kept (it flushed as it failed): none is asked again.
    assert record["queries"] == reference.queries == replayed + spent and replayed > 0
    recovered = ReLUNet.load(out / "recovered.safetensors")
    assert verify(recovered, reference.net, n_samples=2048, seed=0).max_weight_error_log2 < -40
