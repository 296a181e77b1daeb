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
from glassbox.config import config_to_dict
from glassbox.errors import GlassboxError
from glassbox.extract.attack import ExtractConfig, extract
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
    assert (
        "unreadable checkpoint (format None, expected 1); pass --overwrite"
        in capsys.readouterr().err
    )
    assert main(["extract", "random:4-5-1", "--out", str(out), "--overwrite"]) in (0, 1)
    assert not (out / CHECKPOINT).exists() and (out / "extraction.json").is_file()
    assert main(["extract", "random:4-5-1", "--out", str(out), "--resume"]) == 2
    assert "holds a finished extraction; there is nothing to resume" in capsys.readouterr().err
    assert main(["extract", "random:4-5-1", "--out", str(tmp_path / "new"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "holds no checkpoint to resume" in err and "without --resume" in err
    assert err.count("\n") == 1 and not (tmp_path / "new").exists()


@pytest.mark.parametrize("damage", ["truncated segment", "missing segment", "truncated manifest"])
def test_a_damaged_checkpoint_is_a_one_line_error(tmp_path: Path, capsys, damage: str) -> None:
    net = ReLUNet.random("4-5-3", seed=0)
    out = tmp_path / "x"
    key = {"target": "random:4-5-3 (seed 0)", "config": config_to_dict(ExtractConfig(seed=0))}
    rec = CheckpointOracle(net_oracle(net), out / CHECKPOINT, key)
    for i in range(3):
        rec.query(np.full((2, 4), float(i)))
    rec.flush()
    segment = next((out / CHECKPOINT).glob("answers-*.npz"))
    if damage == "truncated segment":
        segment.write_bytes(segment.read_bytes()[:50])
    elif damage == "missing segment":
        segment.unlink()
    else:
        manifest = out / CHECKPOINT / MANIFEST
        manifest.write_text(manifest.read_text()[:30])
    with pytest.raises(
        GlassboxError, match=r"unreadable checkpoint \(.*\); pass --overwrite"
    ) as err:
        CheckpointOracle(net_oracle(net), out / CHECKPOINT, key, resume=True)
    assert "\n" not in str(err.value)
    # Through the CLI: one line, exit status 2, no traceback.
    assert main(["extract", "random:4-5-3", "--out", str(out), "--resume"]) == 2
    said = capsys.readouterr().err
    assert said.startswith("extracting random:4-5-3") and "Traceback" not in said
    assert said.splitlines()[1:] == [f"glassbox: error: {err.value}"]


def test_two_saves_of_one_net_are_the_same_bytes(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    net = ReLUNet.random("6-5-4-2", seed=3)
    for name in "ab":
        net.save(tmp_path / f"{name}.safetensors")
    data = (tmp_path / "a.safetensors").read_bytes()
    assert data == (tmp_path / "b.safetensors").read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    assert list(header) == sorted(header) and list(header["__metadata__"]) == sorted(
        header["__metadata__"]
    )
    assert (8 + size) % 8 == 0
    again = ReLUNet.load(tmp_path / "a.safetensors")  # and the library reads it back
    assert all(np.array_equal(x, y) for x, y in zip(again.weights, net.weights, strict=True))
    assert np.array_equal(
        load_file(str(tmp_path / "a.safetensors"))["layers.2.bias"], net.biases[2]
    )


def _extract(url: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "glassbox.cli", "extract", url, "--out", str(out), *extra]
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _checkpointed_queries(out: Path) -> int:
    try:
        return int(json.loads((out / CHECKPOINT / MANIFEST).read_text())["queries"])
    except (OSError, ValueError, KeyError):
        return 0


def _served(url: str) -> int:
    return int(httpx.get(f"{url}/v1/usage", timeout=10).json()["queries"])


@pytest.mark.parametrize("at", [0.25, 0.5, 0.95])
def test_a_kill_at_any_point_costs_at_most_ten_percent_more_queries(
    tmp_path: Path, at: float
) -> None:
    # The default checkpoint timing (5 s): the whole run takes about 2 s, so only the
    # checkpoints by rows are written before the kill.
    net = ReLUNet.random(DEEP, seed=0)
    reference = extract(net_oracle(net))
    out = tmp_path / "x"
    with running_service(f"random:{DEEP}") as url:
        run = _extract(url, out)
        deadline = time.monotonic() + 240
        while _served(url) < at * reference.queries and run.poll() is None:
            assert time.monotonic() < deadline, "the run never reached the kill point"
            time.sleep(0.003)
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=60)
        assert run.returncode == -signal.SIGKILL, "the run ended before the kill"
        killed_at = _served(url)
        resumed = _extract(url, out, "--resume")
        stdout, stderr = resumed.communicate(timeout=300)
        spent = _served(url)
    assert resumed.returncode == 0, stderr
    record = json.loads((out / "extraction.json").read_text())
    assert record["queries"] == reference.queries
    extra = spent / reference.queries - 1
    print(f"killed at {killed_at} of {reference.queries} ({at:.0%}): {extra:.1%} more queries")
    assert 0 <= extra <= 0.10, (killed_at, spent, reference.queries)


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
