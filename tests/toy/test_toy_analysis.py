"""The analysis on hand-built networks whose answers are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from glassbox.toy import analysis as A
from glassbox.toy import geometry as G
from glassbox.toy import summary as S


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
    s = S.summarize(W1, W2, b)
    assert (s["monosemantic"], s["polysemantic"], s["dead"]) == (8, 0, 0)
    assert s["features"]["pair"] == 4 and s["features_computed"] == 4
    assert s["features_per_neuron_mean"] == 1.0 and s["top_features_dedicated"] == 4
    feats = A.feature_computation(W1, W2, b)
    assert feats[2].neurons_pos == (2,) and feats[2].neurons_neg == (6,)
    assert feats[2].error_pos == 0.0 and feats[2].error_neg == 0.0


def test_analysis_ignores_neuron_order_and_scale() -> None:
    W1, W2, b = pair_net(5)
    S1, S2 = scramble(W1, W2)
    assert S.summarize(S1, S2, b) == S.summarize(W1, W2, b)
    # The canonical order lines the scrambled neurons up with the originals.
    n1, _, _ = A.normalize_neurons(W1, W2)
    m1, _, _ = A.normalize_neurons(S1, S2)
    assert np.allclose(n1[G.neuron_order(W1)], m1[G.neuron_order(S1)])


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
    s = S.summarize(W1, W2, np.zeros(4))
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
    s = S.summarize(W1, W2, np.zeros(2))
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
    assert np.allclose(G.feature_norms(W), [1, 1, 1])
    assert np.allclose(G.superposition(W), [0, 1, 1])
    assert np.allclose(G.dimensions_per_feature(W), [1, 0.5, 0.5])
    assert G.dimensionality(W) == pytest.approx(2 / 3)
    # An unlearned feature has D_i = 0 and no superposition.
    W0 = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert np.allclose(G.dimensions_per_feature(W0), [1, 0])
    s = S.summarize_tied(W, np.zeros(3))
    assert s["features_represented"] == 3


def test_relu_hidden_tied_census_uses_transpose() -> None:
    W = np.array([[1.0, 0.0, 0.3], [0.0, 1.0, 0.0]])
    s = S.summarize(W, W.T, np.zeros(3), signed_inputs=False, target="identity")
    assert (s["monosemantic"], s["polysemantic"]) == (1, 1)
    assert s["features"]["pair"] == 1  # feature 1: one dedicated neuron computes x exactly


def test_constant_baseline_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    p, importance = np.array([[1.0, 0.3]]), np.array([1.0, 0.5])
    x = rng.uniform(0, 1, (400_000, 2)) * (rng.uniform(size=(400_000, 2)) < p)
    mc = (importance * (x - x.mean(axis=0)) ** 2).mean()
    assert A.constant_baseline(p, importance)[0] == pytest.approx(mc, rel=0.01)


def pair_with_helper(helper_out: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features 0, 1 as clean pairs, plus a polysemantic neuron reading x0 (0.5) and x1 (1).

    The helper writes output 0 with ``helper_out`` and nothing else; the pair neuron ReLU(x0)
    writes output 0 with ``1 - helper_out / 2``, so x0's output on x0 alone stays exact.
    """
    W1 = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [0.5, 1.0]])
    W2 = np.zeros((2, 5))
    W2[0, [0, 1]] = [1.0 - helper_out / 2, 1.0]
    W2[1, [2, 3]] = 1.0
    W2[0, 4] = helper_out
    return W1, W2, np.zeros(2)


def test_a_pair_stays_a_pair_when_a_polysemantic_neuron_adds_a_little() -> None:
    # The helper reads x0 at 0.5 (>= 0.1) and writes output 0 up: the old rule called
    # feature 0 "superposition" although the pair carries 99% of its output.
    W1, W2, b = pair_with_helper(0.02)
    feats = A.feature_computation(W1, W2, b)
    assert feats[0].how == "pair"
    assert feats[0].neurons_pos == (0,) and feats[0].share_pos[0] == pytest.approx(0.99)
    assert feats[0].neurons_neg == (1,) and feats[0].share_neg == (1.0,)
    shares = A.output_shares(W1, W2, 1)
    assert shares[4, 0] == pytest.approx(0.01)  # 0.5 * 0.02 of a total 0.99 + 0.01
    assert np.allclose(shares.sum(axis=0), 1.0)


def test_a_polysemantic_neuron_with_a_real_share_makes_superposition() -> None:
    W1, W2, b = pair_with_helper(0.8)  # the helper now carries 0.4 / (0.6 + 0.4) of x0 > 0
    feats = A.feature_computation(W1, W2, b)
    assert feats[0].how == "superposition"
    assert feats[0].share_pos == pytest.approx((0.6, 0.4))
    assert feats[0].neurons_neg == (1,)  # the negative side is still the clean ReLU(-x0)


def test_shares_decide_redundant_against_pair() -> None:
    # Feature 0: ReLU(x0) split 50/50 over two monosemantic neurons; ReLU(-x0) one neuron.
    W1 = np.array([[1.0], [1.0], [-1.0]])
    W2 = np.array([[0.5, 0.5, 1.0]])
    assert A.feature_computation(W1, W2, np.zeros(1))[0].how == "redundant"
    # One of them carrying 95%: a pair with a redundant sliver.
    W2 = np.array([[0.95, 0.05, 1.0]])
    assert A.feature_computation(W1, W2, np.zeros(1))[0].how == "pair"


def test_output_shares_ignore_neuron_scale_and_order() -> None:
    W1, W2, _ = pair_with_helper(0.3)
    S1, S2 = scramble(W1, W2, seed=3)
    perm = np.random.default_rng(3).permutation(5)
    for sign in (1, -1):
        assert np.allclose(A.output_shares(S1, S2, sign), A.output_shares(W1, W2, sign)[perm])


def test_normalisation_is_scale_free_for_both_layers() -> None:
    W1, W2, _ = pair_with_helper(0.3)
    scale = np.array([0.5, 2.0, 3.0, 0.25, 7.0])
    n1, n2, s = A.normalize_neurons(W1 * scale[:, None], W2 / scale[None, :])
    m1, m2, _ = A.normalize_neurons(W1, W2)
    assert np.allclose(n1, m1) and np.allclose(n2, m2)
    assert np.allclose(s, scale * np.abs(W1).max(axis=1))
    # The function is unchanged: W2 diag(s) W1 / s == W2 W1 neuron by neuron.
    assert np.allclose(n2 * np.abs(W1).max(axis=1)[None, :] ** -1, W2)
    census = A.neuron_census(W1 * scale[:, None], W2 / scale[None, :])
    assert [c.write_weights for c in census] == [c.write_weights for c in A.neuron_census(W1, W2)]


def test_motif_needs_reciprocal_output_weights() -> None:
    W1 = np.array([[2.0, -0.5], [1.0, 0.0], [0.0, 1.0]])
    inhibited = np.array([[0.5, 0.0, 0.0], [2.0, -1.0, 0.0]])
    assert len(A.asymmetric_motifs(W1, inhibited)) == 1
    # Same input weights (ratio 4), but the weak feature's output is not written more strongly.
    for weak_out in (0.5, 0.9, 0.0):
        W2 = inhibited.copy()
        W2[1, 0] = weak_out
        assert A.asymmetric_motifs(W1, W2) == [], weak_out


def stalled(seed: int = 0) -> tuple[np.ndarray, ...]:
    """A 'trained' net where neurons 1..4 never moved from init, neuron 0 learned ReLU(x0)."""
    rng = np.random.default_rng(seed)
    W1_0 = rng.normal(0, 0.12, (5, 30))
    W2_0 = rng.normal(0, 0.12, (30, 5))
    W1, W2 = W1_0.copy(), W2_0.copy()
    W1[0, 0], W2[0, 0] = 1.5, 1.2  # learned: x0's weight and its path grew
    W1[1:] *= 0.999  # weight decay only
    return W1, W2, np.zeros(30), W1_0, W2_0


def test_untrained_leftovers_are_not_counted_as_reads() -> None:
    W1, W2, b, W1_0, W2_0 = stalled()
    naive = S.summarize(W1, W2, b)
    assert naive["polysemantic"] == 5 and naive["features_per_neuron_mean"] > 5
    told = S.summarize(W1, W2, b, init=(W1_0, W2_0))
    assert (told["monosemantic"], told["polysemantic"], told["untrained"]) == (1, 0, 4)
    assert told["features_per_neuron_mean"] == 1.0
    assert told["leftover_reads_mean"] > 5
    census = A.neuron_census(W1, W2, init=(W1_0, W2_0))
    assert census[0].reads == (0,) and len(census[0].leftovers) >= 1
    assert census[3].role == "untrained" and census[3].reads == ()
    # A weight that kept its initial value but whose path to its output grew is learned.
    W2b = W2.copy()
    W2b[5, 2] = W2_0[5, 2] + 2.0 / W1[2, 5]  # path W1[2, 5] W2[5, 2] grows by 2
    assert A.learned_mask(W1, W2b, (W1_0, W2_0))[2, 5]
    assert not A.learned_mask(W1, W2, (W1_0, W2_0))[2, 5]
    # Moving by less than one initial standard deviation is noise, whatever the ratio.
    W1c = W1.copy()
    W1c[2, 5] = W1_0[2, 5] * 3.0 if abs(W1_0[2, 5]) < 0.03 else W1_0[2, 5] * 0.4
    moved = abs(W1c[2, 5] - W1_0[2, 5])
    assert A.learned_mask(W1c, W2, (W1_0, W2_0))[2, 5] == (moved >= W1_0.std())


def test_feature_superposition_is_zero_for_pairs_and_ignores_leftovers() -> None:
    W1, W2, _ = pair_net(4)
    assert np.allclose(A.feature_superposition(W1, W2), 0.0)
    W1, W2, _ = pair_with_helper(0.3)
    sup = A.feature_superposition(W1, W2)
    assert sup[0] > 0 and sup[1] > 0
    W1, W2, _, W1_0, W2_0 = stalled()
    assert A.feature_superposition(W1, W2).max() > 0
    assert np.allclose(A.feature_superposition(W1, W2, (W1_0, W2_0)), 0.0)
