"""Knowing the oracle before attacking it: precision, noise, labels, curvature, fast stops."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from glassbox.extract.attack import ExtractConfig, default_budget, extract
from glassbox.extract.tolerance import FLOAT32_EPS, FLOAT64_EPS
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import (
    FunctionOracle,
    QueryBudgetExceeded,
    averaged,
    float32_outputs,
    label_only,
    limited,
    net_oracle,
    noisy,
    rounded,
)
from glassbox.oracle.probe import (
    AVERAGE_TO,
    COARSEST,
    MAX_REPEATS,
    NOISE_BOUND,
    profile_oracle,
)
from glassbox.verify.compare import verify

NET = ReLUNet.random("10-10-1", seed=0)
W1, B1, W2 = NET.weights[0], NET.biases[0], NET.weights[1]
RNG = np.random.default_rng


def _profile(oracle):
    return profile_oracle(oracle, RNG(0))


def _smooth(kind: str):
    act = {
        "tanh": np.tanh,
        "softplus": lambda z: np.logaddexp(0.0, z),
        "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    }[kind]
    return FunctionOracle(lambda X: act(X @ W1.T + B1) @ W2.T, 10, 1)


def test_float64_answers_are_float64_and_piecewise_linear():
    oracle = net_oracle(NET)
    p = _profile(oracle)
    assert (p.kind, p.eps, p.stop, p.repeats) == ("float64", FLOAT64_EPS, None, 1)
    assert p.curved_share is not None and p.curved_share < 0.1
    assert p.queries == oracle.queries <= 512  # every probe query counted, and few


def test_float32_answers_are_recognised():
    p = _profile(float32_outputs(net_oracle(NET)))
    assert (p.kind, p.eps, p.stop) == ("float32", FLOAT32_EPS, None)


@pytest.mark.parametrize("digits", [4, 6, 8, 12])
def test_rounded_answers_give_their_digits_and_stop_when_too_coarse(digits):
    p = _profile(rounded(net_oracle(NET), digits))
    assert (p.kind, p.digits) == ("digits", digits)
    assert p.eps == pytest.approx(0.5 * 10.0 ** (1 - digits))
    too_coarse = p.eps > COARSEST
    assert too_coarse == (digits <= 6)
    if too_coarse:
        assert p.stop is not None and f"rounded to {digits} significant digits" in p.stop
        assert p.queries <= 64
    else:
        assert p.stop is None


@pytest.mark.parametrize("sigma", [1e-9, 1e-7])
def test_noise_is_measured_and_averaging_sized_to_it(sigma):
    p = _profile(noisy(net_oracle(NET), sigma, seed=1))
    assert p.kind == "noisy" and p.stop is None
    assert sigma / 1.5 < p.sigma < sigma * 1.5
    rel = NOISE_BOUND * p.sigma / p.scale
    assert p.repeats == max(1, math.ceil((rel / AVERAGE_TO) ** 2))
    assert p.eps == pytest.approx(rel / math.sqrt(p.repeats))
    assert p.eps <= AVERAGE_TO
    assert (p.repeats > 1) == (sigma == 1e-7)


def test_noise_too_large_to_average_stops_with_the_reason():
    p = _profile(noisy(net_oracle(NET), 1e-2, seed=1))
    assert p.stop is not None and "too noisy" in p.stop and str(MAX_REPEATS) in p.stop
    assert p.queries <= 32 + 64


@pytest.mark.parametrize("kind", ["tanh", "softplus", "sigmoid"])
def test_smooth_nets_are_not_piecewise_linear(kind):
    p = _profile(_smooth(kind))
    assert p.stop is not None and "not piecewise linear" in p.stop
    assert p.curved_share is not None and p.curved_share > 0.9


@pytest.mark.parametrize("spec", ["10-10-1", "10-10-3"])
def test_labels_are_recognised(spec):
    p = _profile(label_only(net_oracle(ReLUNet.random(spec, seed=0))))
    assert p.kind == "labels" and p.stop is not None and p.stop.startswith("labels only")


def test_a_constant_black_box_stops():
    p = _profile(FunctionOracle(lambda X: np.zeros((X.shape[0], 2)), 5, 2))
    assert p.kind == "constant" and "constant function" in (p.stop or "")


def test_nan_stops_at_the_first_batch():
    p = _profile(FunctionOracle(lambda X: np.full((X.shape[0], 1), np.nan), 5, 1))
    assert p.kind == "not-finite" and "NaN" in (p.stop or "") and p.queries == 32


@pytest.mark.parametrize(
    "target, words, most",
    [
        ("nan", "NaN", 64),
        ("tanh", "not piecewise linear", 400),
        ("softplus", "not piecewise linear", 400),
        ("labels", "labels only", 600),
        ("rounded4", "too coarse", 64),
    ],
)
def test_extract_stops_fast_with_the_reason(target, words, most):
    oracle = {
        "nan": lambda: FunctionOracle(lambda X: np.full((X.shape[0], 1), np.nan), 10, 1),
        "tanh": lambda: _smooth("tanh"),
        "softplus": lambda: _smooth("softplus"),
        "labels": lambda: label_only(net_oracle(NET)),
        "rounded4": lambda: rounded(net_oracle(NET), 4),
    }[target]()
    result = extract(oracle, ExtractConfig(seed=0))
    assert not result.success and result.net is None
    assert words in result.message and result.message.startswith("stopped")
    assert result.queries <= most and result.queries == oracle.queries


def test_nan_in_the_middle_of_a_run_stops_it_with_the_reason():
    far_nan = FunctionOracle(
        lambda X: np.where(np.linalg.norm(X, axis=1, keepdims=True) > 6, np.nan, NET.forward(X)),
        10,
        1,
    )
    result = extract(far_nan, ExtractConfig(seed=0))
    assert not result.success and "answers contain NaN" in result.message


def test_averaged_counts_every_repeat_and_limited_refuses_before_answering():
    inner = net_oracle(NET)
    avg = averaged(noisy(inner, 1e-3, seed=0), 16, max_rows=64)
    X = RNG(1).normal(size=(10, 10))
    Y = avg.query(X)
    assert inner.queries == 160
    assert np.max(np.abs(Y - NET.forward(X))) < 1e-3  # 16 repeats: sigma / 4
    capped = limited(averaged(inner, 2), 25, per_row=2)
    capped.query(X)
    assert inner.queries == 180
    with pytest.raises(QueryBudgetExceeded):
        capped.query(X[:3])  # 20 + 6 > 25: refused, nothing counted
    assert inner.queries == 180


def test_the_default_budget_grows_with_the_widths_and_bounds_every_run():
    assert default_budget(784, 10) > default_budget(10, 1) > 0
    assert default_budget(10, 1, repeats=4) == 4 * default_budget(10, 1)
    # A piecewise-linear target with kinks everywhere (a maximum of many affine pieces in
    # two directions): whatever the attack makes of it, it stops within its budget.
    A = RNG(2).normal(size=(400, 10))
    zigzag = FunctionOracle(lambda X: np.max(X @ A.T, axis=1, keepdims=True), 10, 1)
    result = extract(zigzag, ExtractConfig(seed=0, max_queries=20_000))
    assert result.queries <= 20_000 and not (result.success and result.net is None)


def test_float32_extraction_of_a_small_net_verifies():
    net = ReLUNet.random("10-10-1", seed=2)
    result = extract(float32_outputs(net_oracle(net)), ExtractConfig(seed=2))
    assert result.success, result.message
    assert result.answers["kind"] == "float32"
    assert result.net is not None
    ver = verify(result.net, net, n_samples=2048, seed=0)
    assert ver.max_weight_error_log2 <= -14
    # The fidelity the attack reported is what verification measures, within 2^2.
    reported = math.log2(result.check["max_error"])
    assert ver.epsilon_log2 <= reported + 2


def test_peak_memory_stays_small_on_hostile_targets():
    code = """
import json, re, numpy as np
from glassbox.extract.attack import ExtractConfig, extract
from glassbox.oracle.core import FunctionOracle, net_oracle, noisy, rounded
from glassbox.mlp import ReLUNet
net = ReLUNet.random("784-64-1", seed=0)
W, b, V = net.weights[0], net.biases[0], net.weights[1]
targets = [
    FunctionOracle(lambda X: np.full((X.shape[0], 1), np.nan), 784, 1),
    FunctionOracle(lambda X: np.tanh(X @ W.T + b) @ V.T, 784, 1),
    rounded(net_oracle(net), 4),
    noisy(net_oracle(net), 1.0),
]
out = [extract(t, ExtractConfig(seed=0)).queries for t in targets]
# This process's own peak (VmHWM): getrusage's maxrss keeps the parent's peak across exec.
status = open("/proc/self/status").read()
print(json.dumps({"queries": out, "rss": int(re.search(r"VmHWM:\\s+(\\d+)", status)[1])}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert max(figures["queries"]) <= 2**16
    assert figures["rss"] < 1024 * 1024  # KiB: under 1 GiB, half the 2 GiB cap


def test_a_budget_too_small_to_probe_is_a_reported_stop():
    result = extract(net_oracle(NET, budget=20), ExtractConfig(seed=0))
    assert not result.success and result.queries == 0
    assert result.message.startswith("stopped after 0 queries: query budget exhausted")
    assert result.answers["description"] == "not known (the probe did not finish)"
