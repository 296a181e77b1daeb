"""BLAS and torch threads chosen by shapes, never by load; the same bits on 1 and 2 threads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from conftest import run_cli
from glassbox.errors import GlassboxError
from glassbox.extract import ExtractConfig, extract
from glassbox.extract.threads import LARGE_INPUT, attack_threads, blas_threads
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import FunctionOracle


def _no_load(*_: object) -> tuple[float, float, float]:
    raise AssertionError("the thread choice read the load average")


def _blas_threads_now() -> int:
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def test_attack_threads_never_read_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getloadavg", _no_load)
    assert attack_threads(784, 1) == 1
    assert attack_threads(LARGE_INPUT - 1, 10) == 1
    big = attack_threads(LARGE_INPUT, 1)
    assert 1 <= big <= 2
    # The same widths give the same choice at any load.
    for load in (0.0, 1.9, 64.0):
        monkeypatch.setattr(os, "getloadavg", lambda v=load: (v, v, v))
        assert attack_threads(784, 1) == 1
        assert attack_threads(LARGE_INPUT, 1) == big


def test_toy_threads_are_a_function_of_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from glassbox.toy.config import ToyConfig
    from glassbox.toy.train import BIG_THREADS, default_threads

    monkeypatch.setattr(os, "getloadavg", _no_load)
    small = ToyConfig(model="abs", n_features=6, n_hidden=4, batch=64)
    big = ToyConfig(model="abs", n_features=400, n_hidden=100, batch=4096, restarts=4)
    assert default_threads(small) == 1
    assert default_threads(big) == BIG_THREADS


def _recording_oracle(net: ReLUNet, seen: list[int]) -> FunctionOracle:
    def f(X: np.ndarray) -> np.ndarray:
        seen.append(_blas_threads_now())
        return net.forward(X)

    return FunctionOracle(f, net.input_dim, net.output_dim)


def test_one_and_two_threads_give_the_same_bits() -> None:
    # Wide enough that OpenBLAS splits its products over two threads when allowed to.
    net = ReLUNet.random("96-12-2", seed=3)
    runs = []
    for threads in (1, 2):
        seen: list[int] = []
        result = extract(_recording_oracle(net, seen), ExtractConfig(seed=3), threads=threads)
        assert set(seen) == {threads}  # every answer was computed under the chosen limit
        assert result.threads == threads and result.success, result.message
        runs.append(result)
    a, b = runs
    assert a.queries == b.queries and a.queries_by_phase == b.queries_by_phase
    assert a.net is not None and b.net is not None and _same_net(a.net, b.net)


def test_default_threads_follow_the_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getloadavg", _no_load)
    net = ReLUNet.random("12-4-1", seed=0)
    seen: list[int] = []
    result = extract(_recording_oracle(net, seen), ExtractConfig(seed=0))
    assert result.threads == 1 and set(seen) == {1}


def test_thread_count_must_be_positive() -> None:
    with pytest.raises(GlassboxError, match="--threads must be at least 1"), blas_threads(0):
        pass


def _same_net(a: ReLUNet, b: ReLUNet) -> bool:
    pairs = zip(a.weights + a.biases, b.weights + b.biases, strict=True)
    return a.dims == b.dims and all(
        (x is None and y is None) or (x is not None and y is not None and np.array_equal(x, y))
        for x, y in pairs
    )


def test_cli_threads(tmp_path: Path) -> None:
    # The safetensors header orders its metadata differently from write to write: the
    # arrays, and every figure but time and memory, are compared.
    nets, records = [], []
    for threads in ("1", "2"):
        out = tmp_path / f"t{threads}"
        code, _, err = run_cli(
            "extract", "random:40-6-1", "--out", str(out), "--quiet", "--threads", threads
        )
        assert code == 0, err
        record = json.loads((out / "extraction.json").read_text())
        assert record.pop("threads") == int(threads)
        for key in ("seconds", "peak_rss_mb", "layers"):
            record.pop(key)
        records.append(record)
        nets.append(ReLUNet.load(out / "recovered.safetensors"))
    assert _same_net(*nets) and records[0] == records[1]
    code, _, err = run_cli(
        "extract", "random:6-4-1", "--out", str(tmp_path / "x"), "--threads", "0"
    )
    assert code == 2 and "--threads" in err
