"""The analysis on hand-built networks whose answers are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from glassbox.toy import analysis as A


def pair_net(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    eye = np.eye(n)
    return np.vstack([eye, -eye]), np.hstack([eye, eye]), np.zeros(n)


def scramble(W1, W2, seed=0):
    """The same function with neurons permuted and positively rescaled (what a reconstruction gives)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(W1.shape[0])
    scale = rng.uniform(0.2, 5.0, W1.shape[0])
    return W1[perm] * scale[:, None], W2[:, perm] / scale[None, :]


def test_pair_net_is_all_monosemantic_pairs() -> None:
    W1, W2, b = pair_net(4)
    s = A.summarize(W1, W2, b)
    assert (s["monosemantic"], s["polysemantic"], s["dead"]) == (8, 0, 0)
    assert s["features"]["pair"] == 4 and s["features_computed"] == 4
    assert s["features_per_neuron_mean"] == 1.0 and s["top_features_dedicated"] == 4
    feats = A.feature_computation(W1, W2, b)
    assert feats[2].neurons_pos == (2,) and feats[2].neurons_neg == (6,)
    assert feats[2].error_pos == 0.0 and feats[2].error_neg == 0.0


def test_analysis_ignores_neuron_order_and_scale() -> None:
    W1, W2, b = pair_net(5)
    S1, S2 = scramble(W1, W2)
    assert A.summarize(S1, S2, b) == A.summarize(W1, W2, b)
    # The canonical order lines the scrambled neurons up with the originals.
    n1, _, _ = A.normalize_neurons(W1, W2)
    m1, _, _ = A.normalize_neurons(S1, S2)
    assert np.allclose(n1[A.neuron_order(W1)], m1[A.neuron_order(S1)])


def test_one_sign_redundant_and_not_represented() -> None:
    # Feature 0: a pair. Feature 1: only ReLU(x1). Feature 2: two half-size neurons per sign.
    # Feature 3: nothing reads it.
    W1 = np.array(
        [
            [1, 0, 0, 0],
            [-1, 0, 0, 0],
            [0, 1, 0, 0],
            [0, 0, 1, 0],
            [0, 0, 1, 0],
            [0, 0, -1, 0],
            [0, 0, -1, 0],
        ],
        dtype=float,
    )
    W2 = np.zeros((4, 7))
    W2[0, [0, 1]] = 1
    W2[1, 2] = 1
    W2[2, 3:7] = 0.5
    feats = A.feature_computation(W1, W2, np.zeros(4))
    assert [f.how for f in feats] == ["pair", "one_sign", "redundant", "not_represented"]
    s = A.summarize(W1, W2, np.zeros(4))
    assert s["features_computed"] == 2 and s["top_features_dedicated"] == 1


def test_polysemantic_neuron_and_superposition() -> None:
    # Neuron 0 reads x0 and (weakly) x1 and writes output 0: x0's positive half is computed
    # in superposition; x1 is read but its output is never written.
    W1 = np.array([[1.0, 0.5], [-1.0, 0.0]])
    W2 = np.array([[1.0, 1.0], [0.0, 0.0]])
    census = A.neuron_census(W1, W2)
    assert census[0].role == "polysemantic" and census[0].reads == (0, 1)
    assert census[0].read_weights == (1.0, 0.5)
    assert census[1].role == "monosemantic" and census[1].sign == -1
    feats = A.feature_computation(W1, W2, np.zeros(2))
    assert feats[0].how == "superposition" and feats[1].how == "not_represented"


def test_dead_neurons() -> None:
    W1 = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1e-4]])
    W2 = np.array([[1.0, 1.0, 5.0], [0.0, 0.0, 5.0]])
    roles = [n.role for n in A.neuron_census(W1, W2)]
    assert roles == ["monosemantic", "dead", "dead"]
    # With inputs in [0, 1], a neuron with only negative weights never fires.
    roles01 = [n.role for n in A.neuron_census(-W1, W2, signed_inputs=False)]
    assert roles01[0] == "dead"


def test_asymmetric_superposition_motif_with_inhibitor() -> None:
    # The paper's motif: a neuron stores x0 (weight 2) and x1 (weight -1/2) and writes them
    # with reciprocal weights 1/2 and 2; neuron 1 reads x0 and inhibits output 1.
    W1 = np.array([[2.0, -0.5], [1.0, 0.0], [0.0, 1.0]])
    W2 = np.array([[0.5, 0.0, 0.0], [2.0, -1.0, 0.0]])
    motifs = A.asymmetric_motifs(W1, W2)
    assert len(motifs) == 1
    m = motifs[0]
    assert (m.neuron, m.strong, m.weak, m.inhibitors) == (0, 0, 1, (1,))
    assert m.ratio == pytest.approx(4.0)
    s = A.summarize(W1, W2, np.zeros(2))
    assert s["asymmetric_motifs"] == 1 and s["asymmetric_motifs_with_inhibitor"] == 1
    # A symmetric two-feature neuron is not the motif.
    assert A.asymmetric_motifs(np.array([[1.0, 1.0]]), np.array([[1.0], [1.0]])) == []


def test_single_feature_outputs() -> None:
    W1, W2, b = pair_net(3)
    t = np.array([-1.0, -0.5, 0.5])
    assert np.allclose(A.single_feature_outputs(W1, W2, b, t), np.abs(t)[None].repeat(3, 0))
    assert np.allclose(
        A.computed_error(W1, W2, b + 0.1, 1), (0.1**2 * 4) / (0.25**2 + 0.5**2 + 0.75**2 + 1)
    )


def test_tied_statistics() -> None:
    # Two orthogonal features and an antipodal pair sharing the second dimension.
    W = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, -1.0]])
    assert np.allclose(A.feature_norms(W), [1, 1, 1])
    assert np.allclose(A.superposition(W), [0, 1, 1])
    assert np.allclose(A.dimensions_per_feature(W), [1, 0.5, 0.5])
    assert A.dimensionality(W) == pytest.approx(2 / 3)
    # An unlearned feature has D_i = 0 and no superposition.
    W0 = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert np.allclose(A.dimensions_per_feature(W0), [1, 0])
    s = A.summarize_tied(W, np.zeros(3))
    assert s["features_represented"] == 3


def test_relu_hidden_tied_census_uses_transpose() -> None:
    W = np.array([[1.0, 0.0, 0.3], [0.0, 1.0, 0.0]])
    s = A.summarize(W, W.T, np.zeros(3), signed_inputs=False, target="identity")
    assert (s["monosemantic"], s["polysemantic"]) == (1, 1)
    assert s["features"]["pair"] == 1  # feature 1: one dedicated neuron computes x exactly


def test_constant_baseline_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    p, importance = np.array([[1.0, 0.3]]), np.array([1.0, 0.5])
    x = rng.uniform(0, 1, (400_000, 2)) * (rng.uniform(size=(400_000, 2)) < p)
    mc = (importance * (x - x.mean(axis=0)) ** 2).mean()
    assert A.constant_baseline(p, importance)[0] == pytest.approx(mc, rel=0.01)
