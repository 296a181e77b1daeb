"""Sweeps on Dask: a LocalCluster on 127.0.0.1 against a process pool, and a cluster of separate
``dask scheduler`` / ``dask worker`` processes reached through ``glassbox sweep --dask``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import run_cli
from glassbox.sweep import load_grid, run_sweep
from glassbox.sweep.executors import Pool, open_executor
from sweep_helpers import TINY_EXTRACT, results, train_grid, write_grid

distributed = pytest.importorskip("distributed")

SRC = str(Path(__file__).resolve().parents[1] / "src")
DASK = Path(sys.executable).with_name("dask")


def _grids(folder: Path) -> list[Path]:
    return [train_grid(folder, seeds=[0, 1, 2]), write_grid(folder, "e.toml", TINY_EXTRACT)]


def test_a_local_cluster_and_a_process_pool_give_identical_points(tmp_path: Path) -> None:
    grids = _grids(tmp_path)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
        processes=True,
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        pool = Pool(client.get_executor(pure=False), 4, "LocalCluster")
        for i, grid in enumerate(grids):
            outcome = run_sweep(load_grid(grid), tmp_path / f"dask{i}", pool)
            assert outcome.failed == () and outcome.ran == outcome.total
        # The points ran in the cluster's worker processes, both of them.
        pids = {
            json.loads(p.read_text())["timing"]["pid"]
            for p in tmp_path.glob("dask*/points/*/result.json")
        }
        assert len(pids) == 2 and os.getpid() not in pids
    with open_executor(workers=2, threads=1) as local:  # as Dask's nanny: 1 thread a worker
        for i, grid in enumerate(grids):
            assert run_sweep(load_grid(grid), tmp_path / f"pool{i}", local).failed == ()
    for i in range(len(grids)):
        dask, pool_results = results(tmp_path / f"dask{i}"), results(tmp_path / f"pool{i}")
        assert len(dask) == (3, 6)[i] and dask == pool_results  # point by point, bit for bit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we started; SIGKILL it if it has not gone within 20 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    proc.wait(timeout=20)


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[str]:
    """A scheduler and one worker (two threads) as separate processes on loopback; their address."""
    if not DASK.is_file():
        pytest.skip("no dask command beside this Python")
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    logs = tmp_path / "logs"
    logs.mkdir()
    started: list[subprocess.Popen[bytes]] = []
    commands = [
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
         "--no-dashboard"],
        [str(DASK), "worker", address, "--nthreads", "2", "--host", "127.0.0.1",
         "--no-dashboard", "--death-timeout", "30", "--local-directory", str(tmp_path / "w")],
    ]  # fmt: skip
    try:
        for i, argv in enumerate(commands):
            with open(logs / f"{i}.log", "wb") as log:
                started.append(
                    subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True)
                )
            time.sleep(0.5 if i == 0 else 0)
        yield address
    finally:
        for proc in reversed(started):
            _stop(proc)


def test_sweep_cli_on_a_scheduler_and_worker_in_their_own_processes(
    tmp_path: Path, cluster: str
) -> None:
    grid = _grids(tmp_path)[1]
    code, stdout, err = run_cli("sweep", str(grid), "--out", str(tmp_path / "d"), "--dask", cluster)
    assert code == 0, err
    assert f"on Dask cluster {cluster} (1 workers, 2 threads)" in err
    assert "6 points, 6 run, 0 already finished, 0 failed" in stdout
    # Run again on the cluster: nothing left to do.
    code, stdout, _ = run_cli("sweep", str(grid), "--out", str(tmp_path / "d"), "--dask", cluster)
    assert code == 0 and "6 points, 0 run, 6 already finished" in stdout
    # The same points on a local pool with Dask's one thread per worker: bit for bit the same.
    pool = ("--workers", "2", "--threads", "1")
    assert run_cli("sweep", str(grid), "--out", str(tmp_path / "pool"), *pool)[0] == 0
    assert results(tmp_path / "d") == results(tmp_path / "pool")


def test_an_unreachable_scheduler_is_a_one_line_error(tmp_path: Path, monkeypatch) -> None:
    from glassbox.sweep import executors

    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", 2)
    grid = _grids(tmp_path)[1]
    address = f"tcp://127.0.0.1:{_free_port()}"
    code, _, err = run_cli("sweep", str(grid), "--out", str(tmp_path / "d"), "--dask", address)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"--dask {address}: cannot reach a Dask scheduler there" in err


@pytest.mark.parametrize("address", ["nonsense:://", "tcp://127.0.0.1:x"])
def test_a_malformed_address_is_one_line_and_exit_2_at_once(tmp_path: Path, address: str) -> None:
    grid = _grids(tmp_path)[1]
    cmd = [sys.executable, "-m", "glassbox.cli", "sweep", str(grid), "--out", str(tmp_path / "d")]
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.monotonic()
    run = subprocess.run(
        [*cmd, "--dask", address], env=env, capture_output=True, text=True, timeout=60
    )
    took = time.monotonic() - t0
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith(f"glassbox: error: --dask {address}: ")
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert took < 30, took  # it hung 40 s (Client.__del__) before the address was checked first
