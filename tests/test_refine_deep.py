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
