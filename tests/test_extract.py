"""The attack on one-hidden-layer nets end to end, against the truth it never sees."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glassbox.cli import _register, cli, main
from glassbox.extract import ExtractConfig, extract
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import FunctionOracle, net_oracle
from glassbox.verify.compare import verify

TARGET_LOG2 = -35.0


def _check(net: ReLUNet, **config: object) -> tuple[object, float]:
    result = extract(net_oracle(net), ExtractConfig(**config))  # type: ignore[arg-type]
    assert result.success, result.message
    assert result.net is not None
    v = verify(result.net, net, n_samples=1000)
    return result, v.max_weight_error_log2


@pytest.mark.parametrize("spec", ["10-8-3", "12-10-1", "10-8-3:relu", "16-12-5:nohiddenbias,relu"])
def test_random_nets_recovered_to_2_minus_35(spec: str) -> None:
    net = ReLUNet.random(spec, seed=4)
    result, err = _check(net)
    assert err <= TARGET_LOG2
    assert result.net.output_relu == net.output_relu  # type: ignore[attr-defined]
    # Bias-free layers stay bias-free: nothing invented.
    assert [b is None for b in result.net.biases] == [b is None for b in net.biases]  # type: ignore[attr-defined]


def test_no_biases_at_all() -> None:
    net = ReLUNet.random("10-6-2:nobias", seed=1)
    result, err = _check(net)
    assert err <= TARGET_LOG2
    assert result.net.biases == (None, None)  # type: ignore[attr-defined]


def test_abs_pairs_on_one_hyperplane() -> None:
    # The toy model's exact abs: ReLU(x) + ReLU(-x) per feature, two neurons per hyperplane.
    W1 = np.vstack([np.eye(3), -np.eye(3)])
    W2 = np.hstack([np.eye(3), np.eye(3)])
    net = ReLUNet([W1, W2], [None, np.full(3, 0.1)], output_relu=True)
    result, err = _check(net)
    assert result.net.dims == (3, 6, 3)  # type: ignore[attr-defined]
    assert err <= TARGET_LOG2


def test_invisible_neuron_reported_not_fatal() -> None:
    base = ReLUNet.random("10-8-2", seed=2)
    W2 = np.array(base.weights[1])
    W2[:, 5] = 0.0  # neuron 5 feeds nothing
    net = ReLUNet([base.weights[0], W2], list(base.biases))
    result, err = _check(net, hidden_width=8)
    assert result.net.dims == (10, 7, 2)  # type: ignore[attr-defined]
    assert err <= TARGET_LOG2
    assert len(result.invisible) == 1 and "1 of 8" in result.invisible[0]


def test_budget_exhaustion_is_a_reported_failure() -> None:
    net = ReLUNet.random("10-8-3", seed=0)
    result = extract(net_oracle(net, budget=500), ExtractConfig())
    assert not result.success
    assert "budget" in result.message
    assert result.queries <= 500


def test_wrong_model_is_never_a_success() -> None:
    # Not a ReLU net at all: whatever comes out must fail the self-check.
    oracle = FunctionOracle(lambda X: np.sin(X[:, :1]) + np.abs(X[:, 1:2]), 3, 1)
    result = extract(oracle, ExtractConfig(max_lines=4))
    assert not result.success


def test_cli_writes_what_it_says(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    rc = main(["extract", "random:10-8-3", "--out", str(out), "--seed", "1", "--quiet"])
    assert rc == 0
    names = {p.name for p in out.iterdir()}
    assert names == {
        "recovered.safetensors",
        "config.json",
        "extraction.json",
        "line.json",
        "line.png",
        "line.svg",
    }
    record = json.loads((out / "extraction.json").read_text())
    for key in ("queries", "queries_by_phase", "seconds", "peak_rss_mb", "success"):
        assert key in record
    assert record["architecture"] == "10-8-3"
    (layer,) = record["layers"]
    assert layer["neurons"] == 8 and layer["sign_method"].startswith("last hidden layer")
    assert {"queries", "seconds", "lowest_sign_confidence"} <= set(layer)
    assert record["success"] is True
    assert sum(record["queries_by_phase"].values()) == record["queries"]
    v = record["verification"]
    assert v["max_weight_error_log2"] <= TARGET_LOG2
    assert set(v) >= {"per_layer_error_log2", "epsilon_log2", "delta"}
    net = ReLUNet.load(out / "recovered.safetensors")
    assert net.dims == (10, 8, 3)


def test_cli_failure_exit_1_and_user_error_exit_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    _register()
    # The command's own exit status (click returns it in non-standalone mode).
    args = ["extract", "random:10-8-3", "--out", str(out), "--budget", "300", "--quiet"]
    assert cli.main(args=args, standalone_mode=False) == 1
    assert json.loads((out / "extraction.json").read_text())["success"] is False
    bad = tmp_path / "bad"
    assert main(["extract", "random:10-x-3", "--out", str(bad), "--quiet"]) == 2
    assert main(["extract", str(tmp_path / "missing.safetensors"), "--out", str(bad)]) == 2
    assert not bad.exists()


def test_kinks_off_every_recovered_plane_fail_the_check() -> None:
    # A neuron whose whole effect is under the functional tolerance would pass the
    # comparison of f; the kinks the lines saw on its hyperplane must not.
    from glassbox.extract.check import unexplained_kinks
    from glassbox.extract.kinks import find_kinks

    net = ReLUNet.random("10-8-2", seed=2)
    oracle = net_oracle(net)
    rng = np.random.default_rng(0)
    x0, d = rng.normal(size=(6, 10)), rng.normal(size=(6, 10))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    seen = [
        (line.point(float(t)), line.d)
        for line in find_kinks(oracle, x0, d, -8.0, 8.0)
        for t in line.t[line.hidden]
    ]
    assert unexplained_kinks(oracle, net, seen, 1.0, 2.0**-52) == 0
    for h in (0, 5):
        keep = np.arange(8) != h
        partial = ReLUNet(
            [net.weights[0][keep], net.weights[1][:, keep]],
            [net.biases[0][keep], net.biases[1]],  # type: ignore[index]
        )
        assert unexplained_kinks(oracle, partial, seen, 1.0, 2.0**-52) > 0


def test_rarely_active_outputs_get_enough_fit_samples() -> None:
    # Like a toy model's outputs: bias-free hidden layer, 60 output ReLUs each on for
    # about 1% of Gaussian inputs. The output fit needs more samples for them; without,
    # the sign solve broke (spurious +/- pairs, "active on too few samples to fit").
    base = ReLUNet.random("30-16-60:nohiddenbias,relu", seed=1)
    X = np.random.default_rng(9).normal(size=(20000, 30))
    b = -np.quantile(base.preactivations(X)[-1] - base.biases[1], 0.99, axis=0)
    net = ReLUNet(list(base.weights), [None, b], output_relu=True)
    assert np.max(np.mean(net.forward(X) > 0, axis=0)) < 0.02
    result, err = _check(net)
    assert result.net.dims == (30, 16, 60)  # type: ignore[attr-defined]
    assert err <= TARGET_LOG2
