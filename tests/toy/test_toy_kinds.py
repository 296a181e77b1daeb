"""The toy model kinds as docs/toy_models.md defines them, feature statistics at their edges,
and the sparse sampler on hand-made uniforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glassbox.errors import GlassboxError
from glassbox.toy.data import draw_uniforms, sparse_features
from glassbox.toy.kinds import KINDS, feature_probability, importance_schedule, importance_vector


def test_the_kinds_are_the_documented_models():
    # docs/toy_models.md: linear x' = W^T W x + b; relu-output x' = ReLU(W^T W x + b);
    # relu-hidden h = ReLU(W x), x' = ReLU(W^T h + b) (tied); abs h = ReLU(W1 x),
    # y' = ReLU(W2 h + b) (untied) on x ~ U[-1, 1], target abs(x).
    table = {
        name: (k.hidden_relu, k.output_relu, k.tied, k.target, k.signed_inputs)
        for name, k in KINDS.items()
    }
    assert table == {
        "linear": (False, False, True, "identity", False),
        "relu-output": (False, True, True, "identity", False),
        "relu-hidden": (True, True, True, "identity", False),
        "abs": (True, True, False, "abs", True),
    }
    assert all(name == k.name for name, k in KINDS.items())
    # |x| = ReLU(x) + ReLU(-x): abs needs two neurons per feature, the others one
    assert {n: k.max_hidden_per_feature for n, k in KINDS.items()} == {
        "linear": 1,
        "relu-output": 1,
        "relu-hidden": 1,
        "abs": 2,
    }


def test_importance_is_geometric_and_its_decay_lies_in_0_1():
    np.testing.assert_array_equal(importance_schedule(4, 0.5), [1.0, 0.5, 0.25, 0.125])
    np.testing.assert_array_equal(importance_schedule(3, 1.0), [1.0, 1.0, 1.0])
    for bad in (0.0, -0.5, 1.0 + 1e-12, 2.0):
        with pytest.raises(GlassboxError, match=f"importance decay {bad} must be in \\(0, 1\\]"):
            importance_schedule(3, bad)


def test_importance_vectors_are_used_as_given_when_valid():
    np.testing.assert_array_equal(importance_vector(0.5, 3), [1.0, 0.5, 0.25])
    np.testing.assert_array_equal(importance_vector([0.5, 0.0, 0.25], 3), [0.5, 0.0, 0.25])
    np.testing.assert_array_equal(importance_vector(np.array([2.0, 3.0]), 2), [2.0, 3.0])
    with pytest.raises(
        GlassboxError,
        match="importance has 2 values but there are 3 features; give one per feature or a single",
    ):
        importance_vector([1.0, 1.0], 3)
    for bad in ([1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [1.0, np.inf, 1.0], [np.nan, 1.0, 1.0]):
        with pytest.raises(GlassboxError, match="finite, non-negative and not all zero"):
            importance_vector(bad, 3)


def test_feature_probability_from_a_scalar_per_instance_or_per_feature_sparsity():
    np.testing.assert_allclose(feature_probability(0.9, 3), [[0.1, 0.1, 0.1]])
    assert feature_probability(0.0, 2, 4).shape == (4, 2)
    np.testing.assert_array_equal(feature_probability(0.0, 2, 4), np.ones((4, 2)))
    np.testing.assert_array_equal(feature_probability([0.0, 0.5], 3), [[1.0] * 3, [0.5] * 3])
    np.testing.assert_array_equal(feature_probability([[0.0, 0.5, 0.75]], 3), [[1.0, 0.5, 0.25]])
    np.testing.assert_array_equal(
        feature_probability([[0.0, 0.5, 0.75]], 3, 2), [[1.0, 0.5, 0.25], [1.0, 0.5, 0.25]]
    )
    two = feature_probability([[0.5, 0.0], [0.25, 0.75]], 2)
    np.testing.assert_array_equal(two, [[0.5, 1.0], [0.75, 0.25]])
    assert feature_probability([0.5], 3, 1).shape == (1, 3)


@pytest.mark.parametrize(
    "sparsity, n, instances, message",
    [
        (1.0, 3, None, r"sparsity 1.0 is outside \[0, 1\): S is the probability that a feature"),
        ([0.5, 1.2, -1.0], 3, None, r"sparsity 1.2 is outside \[0, 1\)"),
        ([-0.25, 0.5], 3, None, r"sparsity -0.25 is outside \[0, 1\)"),
        (np.nan, 3, None, r"sparsity nan is outside \[0, 1\)"),
        ([[0.1, 0.2]], 3, None, r"sparsity of shape \(1, 2\) does not fit 3 features"),
        (np.zeros((2, 2, 2)), 2, None, "does not fit 2 features"),
        ([0.1, 0.2], 3, 3, "sparsity has 2 rows but there are 3 instances"),
    ],
)
def test_feature_probability_refuses_what_cannot_be_a_sparsity(sparsity, n, instances, message):
    with pytest.raises(GlassboxError, match=message):
        feature_probability(sparsity, n, instances)


def test_features_are_present_where_keep_is_below_p_and_signed_on_request():
    keep = torch.tensor([[[0.1, 0.5, 0.9], [0.3, 0.3, 0.3]]])  # 1 restart, batch 2, 3 features
    value = torch.tensor([[[0.25, 0.5, 1.0], [0.0, 0.75, 0.5]]])
    p = torch.tensor([[0.5, 0.5, 0.95]])
    np.testing.assert_array_equal(
        sparse_features(keep, value, p, signed=False).numpy(),
        [[[0.25, 0.0, 1.0], [0.0, 0.75, 0.5]]],
    )
    np.testing.assert_array_equal(
        sparse_features(keep, value.clone(), p, signed=True).numpy(),
        [[[-0.5, 0.0, 1.0], [-1.0, 0.5, 0.0]]],
    )


def test_instance_c_times_restarts_plus_r_uses_restart_r_and_out_is_reused():
    keep = torch.tensor([[[0.2, 0.6]], [[0.6, 0.2]]])  # 2 restarts, batch 1, 2 features
    value = torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]]])
    p = torch.tensor([[0.5, 0.5], [0.5, 0.5], [1.0, 1.0], [0.0, 0.0]])  # 2 configs x 2 restarts
    out = torch.full((4, 1, 2), 7.0)
    x = sparse_features(keep, value, p, signed=False, out=out)
    assert x is out
    np.testing.assert_array_equal(
        x.numpy(), [[[1.0, 0.0]], [[0.0, 4.0]], [[1.0, 2.0]], [[0.0, 0.0]]]
    )
    with pytest.raises(ValueError, match="3 instances is not a multiple of 2 restarts"):
        sparse_features(keep, value, p[:3], signed=False)


def test_uniforms_fill_both_draws_from_each_restarts_own_generator():
    gens = [torch.Generator().manual_seed(s) for s in (4, 5)]
    keep, value = draw_uniforms(gens, 3, 2)
    assert keep.shape == value.shape == (2, 3, 2)
    alone = torch.Generator().manual_seed(5)
    first, second = torch.rand((3, 2), generator=alone), torch.rand((3, 2), generator=alone)
    assert torch.equal(keep[1], first) and torch.equal(value[1], second)
    out = (torch.full((2, 3, 2), 9.0), torch.full((2, 3, 2), 9.0))
    again = draw_uniforms([torch.Generator().manual_seed(s) for s in (4, 5)], 3, 2, out=out)
    assert again[0] is out[0] and torch.equal(again[0], keep) and torch.equal(again[1], value)
