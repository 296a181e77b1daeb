"""The sparse feature sampler and importance schedules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glassbox.errors import GlassboxError
from glassbox.toy.data import (
    draw_uniforms,
    feature_probability,
    importance_schedule,
    importance_vector,
    sparse_features,
)


def sample(prob: list[list[float]], batch: int, signed: bool, restarts: int = 1, seed: int = 0):
    p = torch.tensor(prob, dtype=torch.float32)
    gens = [torch.Generator().manual_seed(seed + r) for r in range(restarts)]
    keep, value = draw_uniforms(gens, batch, p.shape[1])
    return sparse_features(keep, value, p, signed).numpy()


@pytest.mark.parametrize("p", [1.0, 0.3, 0.01])
def test_zero_fraction_matches_sparsity(p: float) -> None:
    x = sample([[p] * 50], 40_000, signed=True)
    nonzero = np.count_nonzero(x) / x.size
    se = np.sqrt(p * (1 - p) / x.size)
    assert abs(nonzero - p) <= 5 * se + 1e-12


def test_signed_values_are_uniform_on_minus_one_one() -> None:
    x = sample([[0.5] * 20], 20_000, signed=True)
    v = x[x != 0]
    assert v.min() >= -1.0 and v.max() < 1.0
    # U[-1, 1]: mean 0, variance 1/3; ten equal bins each hold 10% (5-sigma tolerances).
    assert abs(v.mean()) < 5 * np.sqrt(1 / 3 / v.size)
    assert abs(v.var() - 1 / 3) < 5 * np.sqrt(4 / 45 / v.size)
    counts = np.histogram(v, bins=10, range=(-1, 1))[0] / v.size
    assert np.all(np.abs(counts - 0.1) < 5 * np.sqrt(0.09 / v.size))


def test_unsigned_values_are_uniform_on_zero_one() -> None:
    x = sample([[0.5] * 20], 20_000, signed=False)
    v = x[x != 0]
    assert v.min() > 0.0 and v.max() < 1.0
    assert abs(v.mean() - 0.5) < 5 * np.sqrt(1 / 12 / v.size)


def test_per_feature_and_per_instance_sparsity() -> None:
    prob = [[1.0, 0.5, 0.1], [0.2, 0.2, 0.2]]
    x = sample(prob, 50_000, signed=False)
    frac = (x != 0).mean(axis=1)
    assert np.allclose(frac, prob, atol=0.01)


def test_instances_sharing_a_restart_share_uniforms() -> None:
    # Two configurations x two restarts; instance c * 2 + r uses restart r's uniforms.
    prob = [[1.0] * 4, [1.0] * 4, [0.5] * 4, [0.5] * 4]
    x = sample(prob, 500, signed=True, restarts=2)
    assert not np.array_equal(x[0], x[1])  # restarts differ
    present = x[2] != 0
    assert np.array_equal(x[2][present], x[0][present])  # same values where both kept
    assert np.all(present <= (x[0] != 0))  # nested masks


def test_feature_probability_shapes_and_errors() -> None:
    assert feature_probability(0.9, 3).shape == (1, 3)
    assert np.allclose(feature_probability([0.0, 0.9], 3), [[1, 1, 1], [0.1, 0.1, 0.1]])
    assert np.allclose(feature_probability([[0.0, 0.5]], 2), [[1.0, 0.5]])
    for bad in (1.0, -0.1, float("nan"), [0.5, 1.5]):
        with pytest.raises(GlassboxError, match="outside"):
            feature_probability(bad, 3)
    with pytest.raises(GlassboxError):
        feature_probability([[0.1, 0.2]], 3)


def test_importance() -> None:
    assert np.allclose(importance_schedule(4, 0.8), [1, 0.8, 0.64, 0.512])
    assert np.allclose(importance_vector([1, 2, 3], 3), [1, 2, 3])
    with pytest.raises(GlassboxError):
        importance_vector([1, 2], 3)
    with pytest.raises(GlassboxError):
        importance_schedule(3, 1.5)
