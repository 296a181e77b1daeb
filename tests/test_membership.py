"""Layer membership by the global test, rare neurons, and attack seeds apart from net seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glassbox.cli import main
from glassbox.extract import ExtractConfig, extract
from glassbox.extract.kinks import find_kinks
from glassbox.extract.membership import ACCEPT, MIN_CROSSINGS, REJECT, Tally, tally_line
from glassbox.extract.prefix import Prefix
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import net_oracle


def _net() -> ReLUNet:
    """A 4-6-5-4-1 net: layer 2's neurons and layer 3's are known in closed form."""
    rng = np.random.default_rng(7)
    dims = [4, 6, 5, 4, 1]
    weights = [
        rng.normal(0, np.sqrt(2 / a), size=(b, a)) for a, b in zip(dims[:-1], dims[1:], strict=True)
    ]
    biases = [rng.normal(0, 0.5, size=b) for b in dims[1:]]
    return ReLUNet(weights, biases)


def _tally(net: ReLUNet, theta: np.ndarray, lines: int = 16) -> Tally:
    """Crossings of the plane ``theta`` (over layer 1's state) on random long lines."""
    prefix = Prefix(net.input_dim)
    assert net.biases[0] is not None
    prefix.push(net.weights[0], net.biases[0])
    rng = np.random.default_rng(1)
    d = rng.normal(size=(lines, net.input_dim))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    found = find_kinks(net_oracle(net), rng.normal(size=(lines, net.input_dim)), d, -12.0, 12.0)
    known = np.ones(prefix.width, dtype=bool)
    out = Tally()
    for line in found:
        out.add(tally_line(prefix, theta, known, 1e-14, line, 2.0**-52))
    return out


def test_global_test_accepts_a_layer_2_neuron_and_rejects_a_layer_3_neuron() -> None:
    net = _net()
    W2, W3 = net.weights[1], net.weights[2]
    b2, b3 = net.biases[1], net.biases[2]
    assert b2 is not None and b3 is not None
    # A layer-2 neuron: its row over layer 1's state is its own row, in every region.
    member = _tally(net, np.append(W2[0], b2[0]))
    assert member.crossings >= MIN_CROSSINGS
    assert member.verdict() == "member" and member.share >= ACCEPT
    # A layer-3 neuron met where layer 2's pattern is P borrows the row (w3 * P) W2: exact
    # only where P holds, so most of its predicted crossings have no kink.
    for on in ([1, 1, 0, 1, 0], [0, 1, 1, 1, 1]):
        p = np.array(on, dtype=float)
        borrowed = np.append((W3[0] * p) @ W2, (W3[0] * p) @ b2 + b3[0])
        deeper = _tally(net, borrowed)
        assert deeper.crossings >= MIN_CROSSINGS
        assert deeper.verdict() == "deeper" and deeper.share <= REJECT


def test_tally_verdicts_and_margins() -> None:
    spread = {b"\x01", b"\x02", b"\x03"}  # confirmed in three patterns of the previous layer
    assert Tally(10, 9, spread).verdict() == "member"
    assert Tally(10, 9, spread).margin() == pytest.approx(0.9 - ACCEPT)
    # All confirmations in one pattern: a deeper neuron's borrowed row is exact there too.
    assert Tally(10, 9, {b"\x01"}).verdict() == "unclear"
    assert Tally(10, 1).verdict() == "deeper" and Tally(10, 1).margin() == pytest.approx(
        REJECT - 0.1
    )
    assert Tally(10, 6).verdict() == "unclear" and Tally(10, 6).margin() < 0
    assert Tally(MIN_CROSSINGS - 1, MIN_CROSSINGS - 1).verdict() == "unclear"
    record = Tally(8, 8, spread).to_json()
    assert record["verdict"] == "member" and record["share"] == 1.0 and record["patterns"] == 3


def test_rare_neuron_is_found() -> None:
    truth = ReLUNet.random("10-10-10-1", seed=6)
    X = np.random.default_rng(0).normal(size=(100_000, 10))
    assert truth.biases[0] is not None and truth.biases[1] is not None
    h1 = np.maximum(X @ truth.weights[0].T + truth.biases[0], 0)
    on = np.mean(h1 @ truth.weights[1].T + truth.biases[1] > 0, axis=0)
    assert on.max() > 0.999  # a layer-2 neuron on for more than 99.9% of Gaussian inputs
    result = extract(net_oracle(truth), ExtractConfig(seed=6))
    assert result.success, result.message
    assert result.architecture == "10-10-10-1"


def test_three_attack_seeds_reach_the_same_architecture() -> None:
    truth = ReLUNet.random("10-8-6-3", seed=1)
    found = []
    for seed in range(3):
        result = extract(net_oracle(truth), ExtractConfig(seed=seed))
        assert result.success, result.message
        found.append(result.architecture)
    assert found == ["10-8-6-3"] * 3


def test_net_seed_sets_the_net_apart_from_the_attack(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    argv = ["extract", "random:8-6-2", "--seed", "5", "--net-seed", "0", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    capsys.readouterr()
    record = json.loads((out / "extraction.json").read_text())
    assert record["target"] == "random:8-6-2 (seed 0)"
    assert record["config"]["seed"] == 5
    assert record["verification"]["max_weight_error_log2"] < -30
    # Without --net-seed the net follows --seed, as before.
    assert main(["extract", "random:8-6-2", "--seed", "5", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    again = json.loads((tmp_path / "b" / "extraction.json").read_text())
    assert again["target"] == "random:8-6-2 (seed 5)"


def test_an_unclear_membership_is_re_measured_on_aimed_lines_not_guessed() -> None:
    from glassbox.extract.judge import judge
    from glassbox.extract.neurons import Neuron
    from glassbox.extract.precision import onto_plane
    from glassbox.extract.predicted import SearchSettings
    from glassbox.extract.witness import Witness

    net = _net()
    prefix = Prefix(net.input_dim)
    assert net.biases[0] is not None and net.biases[1] is not None and net.biases[2] is not None
    prefix.push(net.weights[0], net.biases[0])
    W2, b2, w3 = net.weights[1], net.biases[1], net.weights[2][0]
    p = np.array([1.0, 1.0, 0.0, 1.0, 0.0])
    rows = [np.append(W2[0], b2[0]), np.append((w3 * p) @ W2, (w3 * p) @ b2 + net.biases[2][0])]
    rng = np.random.default_rng(3)
    candidates = []
    for theta in rows:
        theta = theta / np.linalg.norm(theta)
        starts = (onto_plane(prefix, theta, rng.normal(size=net.input_dim)) for _ in range(50))
        x = next(y for y in starts if y is not None)
        known = np.ones(prefix.width, dtype=bool)
        w = Witness(x, known, np.zeros((1, prefix.width + 1)), theta, 1e-14, False)
        # Two confirmed crossings: too few for a verdict either way.
        candidates.append(Neuron(prefix.width, [w], theta, known, 1e-14, tally=Tally(2, 2)))
    oracle = net_oracle(net)
    settings = SearchSettings(1.0, 4.0, 2, 96, 8, 2.0**-52)
    verdict = judge(oracle, prefix, candidates, settings, rng, half=12.0)
    assert oracle.queries > 0  # fresh aimed lines were searched
    member, deeper = candidates
    assert member.tally.crossings >= MIN_CROSSINGS and member.tally.verdict() == "member"
    assert deeper.tally.crossings >= MIN_CROSSINGS and deeper.tally.verdict() != "member"
    assert verdict.kept == [member]


def test_a_refinement_far_worse_than_the_row_it_replaces_is_refused(monkeypatch) -> None:
    import glassbox.extract.precision as precision
    from glassbox.extract.neurons import Neuron

    theta = np.array([0.6, 0.8, 0.0])
    neuron = Neuron(2, [], theta.copy(), np.ones(2, dtype=bool), 1e-12)

    def corrupt(oracle, prefix, n, rng, scale, eps):  # kinks of a neighbour, say
        n.theta, n.error, n.refined = np.array([0.0, 0.6, 0.8]), 1e-4, 9
        return 9

    def improve(oracle, prefix, n, rng, scale, eps):
        n.theta, n.error, n.refined = np.array([0.6, 0.8, 1e-13]), 1e-14, 9
        return 9

    rng = np.random.default_rng(0)
    args = (None, Prefix(2), neuron, rng, 1.0, 2.0**-52)
    monkeypatch.setattr(precision, "refine_neuron", corrupt)
    assert precision.refine_or_keep(*args) == 0  # type: ignore[arg-type]
    assert np.array_equal(neuron.theta, theta) and neuron.error == 1e-12 and neuron.refined == 0
    monkeypatch.setattr(precision, "refine_neuron", improve)
    assert precision.refine_or_keep(*args) == 9  # type: ignore[arg-type]
    assert neuron.error == 1e-14 and neuron.refined == 9


def test_a_refinement_pass_worse_than_the_pass_before_is_undone(monkeypatch) -> None:
    """10-8-6-3 seed 0: a second pass left a coordinate to the gradients (2^-41 -> 2^-31)."""
    import glassbox.extract.precision as precision
    from glassbox.extract.neurons import Neuron

    first = Neuron(2, [], np.array([0.6, 0.8, 0.0]), np.ones(2, dtype=bool), 1e-9)
    results = iter([(np.array([0.6, 0.8, 1e-13]), 4e-13), (np.array([0.6, 0.8, 2e-9]), 1.7e-9)])

    def passes(oracle, prefix, n, rng, scale, eps):
        n.theta, n.error = next(results)
        n.refined = 24
        return 24

    monkeypatch.setattr(precision, "refine_neuron", passes)
    rng = np.random.default_rng(0)
    precision.refine_layer(None, Prefix(2), [first], rng, 1.0, 2.0**-52)  # type: ignore[arg-type]
    # The second pass (worse, though less than 16x and under WORSE) is undone.
    assert first.error == 4e-13 and first.theta[2] == 1e-13
    # A first pass over a gradient estimate may read a larger error bar and still stand.
    second = Neuron(2, [], np.array([0.6, 0.8, 0.0]), np.ones(2, dtype=bool), 1e-12)
    results = iter([(np.array([0.6, 0.8, 1e-13]), 2e-12), (np.array([0.6, 0.8, 0.0]), 3e-12)])
    precision.refine_layer(None, Prefix(2), [second], rng, 1.0, 2.0**-52)  # type: ignore[arg-type]
    assert second.error == 2e-12 and second.theta[2] == 1e-13
