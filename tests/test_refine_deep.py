"""Refinement at depth: bounded lines, thin coordinates covered, a worse pass undone (issue 19)."""

from __future__ import annotations

import numpy as np

from glassbox.extract import ExtractConfig, extract
from glassbox.extract.kinks import find_kinks
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import net_oracle
from glassbox.verify.compare import verify


def _comb(at: np.ndarray) -> ReLUNet:
    """y = sum_k c_k ReLU(x - at_k): kinks at x = at_k, slopes c_k > 0."""
    c = np.random.default_rng(1).uniform(0.5, 2.0, size=(1, at.size))
    return ReLUNet([np.ones((at.size, 1)), c], [-at, None])


def test_a_line_keeps_at_most_max_segments_open() -> None:
    at = np.sort(np.random.default_rng(0).uniform(0.0, 1.0, size=40))
    net = _comb(at)
    x0, d = np.array([[0.5]]), np.array([[1.0]])
    (full,) = find_kinks(net_oracle(net), x0, d, -0.55, 0.55)
    np.testing.assert_allclose(full.t, at - 0.5, atol=1e-12)
    capped = net_oracle(net)
    rounds = 6
    (line,) = find_kinks(capped, x0, d, -0.55, 0.55, max_rounds=rounds, max_segments=2)
    # 4 queries to start, then 3 per open segment per round: never more than 2 open.
    assert capped.queries <= 4 + rounds * 2 * 3
    assert line.unresolved > 0 and line.t.size < 40


def test_deep_rows_of_10_10_10_1_seed_0_reach_2_minus_36() -> None:
    """A layer-2 row whose coordinate 2 was on at no kink (its one aimed try found the
    output blind there) stayed at 2^-29; three tries a round cover it (2^-40.7 measured)."""
    net = ReLUNet.random("10-10-10-1", seed=0)
    result = extract(net_oracle(net), ExtractConfig(seed=0))
    assert result.success and result.net is not None, result.message
    v = verify(result.net, net, n_samples=1000)
    assert v.per_layer_error_log2[1] <= -36.0, v.per_layer_error_log2
    assert v.max_weight_error_log2 <= -34.0, v.per_layer_error_log2


def test_equations_span_only_with_one_null_direction() -> None:
    from glassbox.extract.precision import _spans

    theta = np.array([0.6, -0.8, 0.0, 0.0])
    rng = np.random.default_rng(0)
    # Rows orthogonal to theta: three independent ones leave theta the one null direction.
    basis = np.array([[0.8, 0.6, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    rows = rng.normal(size=(6, 3)) @ basis
    assert np.allclose(rows @ theta, 0.0) and _spans(rows)
    # The same state met again and again (one region of the prefix): one equation, and a
    # second null direction; two states alone still leave the row free.
    assert not _spans(np.repeat(rows[:1], 10, axis=0))
    assert not _spans(np.vstack([np.repeat(rows[:1], 5, axis=0), rows[1:2]]))
    assert _spans(np.vstack([np.repeat(rows[:1], 5, axis=0), rows[1:3]]))


def test_an_always_on_rows_kinks_in_one_region_do_not_trim_the_rest() -> None:
    """10-8-6-3 seed 35: ten kinks shared one prefix state (a single-neuron region); their
    residuals set the median, and trimming left rank 6 of 8 (row 2^-28; 2^-43 measured)."""
    net = ReLUNet.random("10-8-6-3", seed=35)
    result = extract(net_oracle(net), ExtractConfig(seed=35))
    assert result.success and result.net is not None, result.message
    v = verify(result.net, net, n_samples=1000)
    assert v.per_layer_error_log2[1] <= -36.0, v.per_layer_error_log2
