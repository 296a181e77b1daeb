"""The oracle's ledger and wrappers: exact counts, budgets at their edge, row caps, averaging, finiteness."""

import numpy as np
import pytest

from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import (
    FunctionOracle,
    NonFiniteAnswer,
    Oracle,
    QueryBudgetExceeded,
    averaged,
    finite_answers,
    float32_outputs,
    label_only,
    limited,
    net_oracle,
    noisy,
    rounded,
    row_capped,
)

W = np.array([[1.0, -2.0, 0.5], [0.25, 0.0, 3.0]])  # 3 inputs, 2 outputs: rows != columns


class Recorder:
    """A linear black box that remembers the shape of every batch it was asked."""

    def __init__(self, w: np.ndarray = W) -> None:
        self.w = w
        self.batches: list[tuple[int, ...]] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.batches.append(x.shape)
        return x @ self.w.T


def _oracle(budget=None, w=W):
    box = Recorder(w)
    return FunctionOracle(box, input_dim=w.shape[1], output_dim=w.shape[0], budget=budget), box


X = np.arange(30, dtype=float).reshape(10, 3) / 7.0


def test_the_budget_error_names_its_figures_and_nothing_is_answered():
    oracle, box = _oracle(budget=10)
    oracle.query(X[:6])
    with pytest.raises(QueryBudgetExceeded) as info:
        oracle.query(X[:5])  # 6 + 5 > 10 (and 6 - 5 would not be)
    exc = info.value
    assert (exc.budget, exc.spent, exc.asked) == (10, 6, 5)
    assert str(exc) == "query budget exhausted: 6 of 10 queries spent, 5 more asked for"
    assert oracle.queries == 6 and box.batches == [(6, 3)]
    oracle.query(X[:4])  # exactly to the budget
    assert oracle.queries == 10 and oracle.budget == 10


def test_a_zero_budget_is_allowed_and_answers_nothing_a_negative_one_is_refused():
    oracle, box = _oracle(budget=0)
    assert oracle.budget == 0 and oracle.queries == 0
    with pytest.raises(QueryBudgetExceeded):
        oracle.query(X[:1])
    assert box.batches == []
    with pytest.raises(GlassboxError, match="query budget must be non-negative, got -1"):
        _oracle(budget=-1)


def test_no_budget_means_no_limit():
    oracle, _ = _oracle(budget=None)
    for _ in range(5):
        oracle.query(np.repeat(X, 100, axis=0))
    assert oracle.queries == 5000 and oracle.budget is None


def test_counts_go_to_the_innermost_phase_and_phases_unwind_on_errors():
    oracle, _ = _oracle()
    with oracle.phase("outer"):
        oracle.query(X[:2])
        with oracle.phase("inner"):
            oracle.query(X[:3])
            oracle.query(X[:1])
        with pytest.raises(GlassboxError), oracle.phase("broken"):
            oracle.query(np.zeros((2, 4)))  # wrong width: nothing counted
        oracle.query(X[:4])
    oracle.query(X[:7])
    assert oracle.queries_by_phase == {"outer": 6, "inner": 4, "other": 7}
    assert oracle.queries == 17
    oracle.queries_by_phase["outer"] = 0  # a copy: the ledger is not touched
    assert oracle.queries_by_phase["outer"] == 6


def test_dimensions_of_one_are_fine_and_zero_is_refused_on_either_side():
    one = FunctionOracle(lambda x: 2.0 * x, input_dim=1, output_dim=1)
    assert (one.input_dim, one.output_dim) == (1, 1)
    np.testing.assert_array_equal(one.query([[3.0], [-1.0]]), [[6.0], [-2.0]])
    for dims in [(0, 1), (1, 0)]:
        with pytest.raises(GlassboxError, match="oracle dimensions must be positive"):
            FunctionOracle(lambda x: x, input_dim=dims[0], output_dim=dims[1])


def test_a_single_row_is_a_batch_of_one_and_counts_one():
    oracle, box = _oracle()
    y = oracle.query(X[2])
    assert y.shape == (1, 2) and oracle.queries == 1 and box.batches == [(1, 3)]
    np.testing.assert_array_equal(y[0], W @ X[2])
    y = oracle.query(X[:5])  # 5 rows of 3 inputs: 5 queries, not 3
    assert y.shape == (5, 2) and oracle.queries == 6
    np.testing.assert_array_equal(y, X[:5] @ W.T)


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 4)), np.zeros((2, 2)), np.zeros((2, 3, 1)), np.zeros(4)]
)
def test_queries_of_the_wrong_shape_are_refused_uncounted(bad):
    oracle, box = _oracle()
    with pytest.raises(GlassboxError, match=r"expected \(k, 3\)"):
        oracle.query(bad)
    assert oracle.queries == 0 and box.batches == []


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_queries_with_a_non_finite_entry_are_refused_uncounted(value):
    oracle, box = _oracle()
    x = X[:4].copy()
    x[2, 1] = value  # one entry among twelve
    with pytest.raises(GlassboxError, match="query contains NaN or infinite values"):
        oracle.query(x)
    assert oracle.queries == 0 and box.batches == []


class _Shaped(Oracle):
    """An oracle whose black box answers a fixed shape, right or wrong."""

    def __init__(self, shape_of) -> None:
        super().__init__(3, 2)
        self.shape_of = shape_of

    def _answer(self, X):
        return np.zeros(self.shape_of(X))


def test_an_answer_of_the_wrong_shape_is_an_error_naming_both_shapes():
    right = _Shaped(lambda x: (x.shape[0], 2))
    assert right.query(X[:5]).shape == (5, 2)
    wrong = _Shaped(lambda x: (x.shape[0], 3))
    with pytest.raises(GlassboxError, match=r"answered shape \(5, 3\); expected \(5, 2\)"):
        wrong.query(X[:5])
    flat = FunctionOracle(lambda x: np.zeros(x.shape[0] * 2 + 1), input_dim=3, output_dim=2)
    with pytest.raises(GlassboxError, match=r"answered shape \(11,\); expected \(5, 2\)"):
        flat.query(X[:5])
    # a flat answer of the right size is the right answer, row by row
    ravel = FunctionOracle(lambda x: (x @ W.T).ravel(), input_dim=3, output_dim=2)
    np.testing.assert_array_equal(ravel.query(X[:5]), X[:5] @ W.T)


def test_the_output_probe_asks_one_row_of_zeros_and_counts_it():
    box = Recorder()
    oracle = FunctionOracle(box, input_dim=3)
    assert oracle.output_dim == 2 and box.batches == [(1, 3)]
    assert oracle.queries_by_phase == {"probe": 1}
    scalar = FunctionOracle(lambda x: x.sum(axis=1), input_dim=3)  # one output
    assert scalar.output_dim == 1
    with pytest.raises(GlassboxError, match="empty array to a probe query"):
        FunctionOracle(lambda x: np.zeros(0), input_dim=3)
    told = FunctionOracle(Recorder(), input_dim=3, output_dim=2)
    assert told.queries == 0 and told.queries_by_phase == {}


def test_net_oracle_needs_a_net_and_hides_its_weights():
    with pytest.raises(GlassboxError, match="net_oracle needs a ReLUNet, got dict"):
        net_oracle({})
    net = ReLUNet.random("3-5-2", seed=1)
    oracle = net_oracle(net, budget=7)
    assert (oracle.input_dim, oracle.output_dim, oracle.budget, oracle.queries) == (3, 2, 7, 0)
    np.testing.assert_array_equal(oracle.query(X[:7]), net.forward(X[:7]))


def test_a_row_cap_splits_batches_and_keeps_the_answers_and_the_count():
    oracle, box = _oracle(budget=100)
    capped = row_capped(oracle, 3)
    y = capped.query(X)
    np.testing.assert_array_equal(y, X @ W.T)
    assert box.batches == [(3, 3), (3, 3), (3, 3), (1, 3)]
    assert capped.queries == oracle.queries == 10 and capped.budget == 100
    box.batches.clear()
    capped.query(X[:1])
    assert box.batches == [(1, 3)]
    one = row_capped(oracle, 1)  # a cap of one row is a valid cap
    np.testing.assert_array_equal(one.query(X[:2]), X[:2] @ W.T)
    box.batches.clear()
    one.query(X[:1])
    assert box.batches == [(1, 3)]  # one row, one batch: no empty batch after it
    for bad in (0, -3):
        with pytest.raises(GlassboxError, match=f"max_rows must be at least 1, got {bad}"):
            row_capped(oracle, bad)


@pytest.mark.parametrize("rows, cap", [(7, 7), (8, 7), (14, 7), (1, 5)])
def test_a_row_cap_never_exceeds_its_cap_and_loses_no_row(rows, cap):
    oracle, box = _oracle()
    x = np.random.default_rng(rows).normal(size=(rows, 3))
    np.testing.assert_array_equal(row_capped(oracle, cap).query(x), x @ W.T)
    sizes = [b[0] for b in box.batches]
    assert max(sizes) <= cap and sum(sizes) == rows and len(sizes) == -(-rows // cap)


def test_non_finite_answers_stop_with_what_and_how_many_rows():
    def answers(bad):
        def f(x):
            y = x @ W.T
            for row, col, value in bad:
                y[row, col] = value
            return y

        return finite_answers(FunctionOracle(f, input_dim=3, output_dim=2))

    np.testing.assert_array_equal(answers([]).query(X[:4]), X[:4] @ W.T)
    with pytest.raises(NonFiniteAnswer, match=r"answers contain NaN \(1 of 4 rows of one batch\)"):
        answers([(2, 1, np.nan)]).query(X[:4])
    with pytest.raises(NonFiniteAnswer, match=r"contain infinity \(2 of 4 rows"):
        answers([(0, 0, np.inf), (3, 1, -np.inf)]).query(X[:4])
    with pytest.raises(NonFiniteAnswer, match=r"contain NaN \(2 of 4 rows") as info:
        answers([(0, 0, np.inf), (1, 1, np.nan)]).query(X[:4])
    assert "not a ReLU network's output, or an overflow inside the black box" in str(info.value)


def test_averaging_returns_the_mean_of_the_repeats_and_counts_every_one():
    net = ReLUNet.random("3-4-2", seed=2)
    x = np.random.default_rng(3).normal(size=(5, 3))
    mean = averaged(noisy(net_oracle(net), 0.1, seed=4), 3)
    plain = noisy(net_oracle(net), 0.1, seed=4)
    expected = plain.query(np.repeat(x, 3, axis=0)).reshape(5, 3, 2).mean(axis=1)
    np.testing.assert_array_equal(mean.query(x), expected)
    assert mean.queries == plain.queries == 15
    with mean.phase("avg"):
        mean.query(x[:2])
    assert mean.queries_by_phase == {"other": 15, "avg": 6}


def test_an_averaged_batch_past_the_budget_is_refused_whole_and_counted_nowhere():
    oracle, box = _oracle(budget=10)
    mean = averaged(oracle, 3)
    with pytest.raises(QueryBudgetExceeded) as info:
        mean.query(X[:4])  # 12 answers > 10
    assert (info.value.budget, info.value.spent, info.value.asked) == (10, 0, 12)
    assert oracle.queries == 0 and oracle.queries_by_phase == {} and box.batches == []
    outer = float32_outputs(row_capped(mean, 2))  # wrappers around the average: the same
    with pytest.raises(QueryBudgetExceeded):
        outer.query(X[:4])
    assert oracle.queries == 0 and box.batches == []
    np.testing.assert_allclose(outer.query(X[:3]), X[:3] @ W.T, rtol=1e-6)  # 9 answers fit
    assert oracle.queries == 9


def test_averaging_asks_at_most_max_rows_at_a_time():
    oracle, box = _oracle()
    mean = averaged(oracle, 3, max_rows=8)  # 2 rows (6 answers) per batch
    np.testing.assert_allclose(mean.query(X[:5]), X[:5] @ W.T, rtol=1e-15)
    assert box.batches == [(6, 3), (6, 3), (3, 3)] and oracle.queries == 15
    box.batches.clear()
    few = averaged(oracle, 4, max_rows=2)  # fewer rows than repeats: one row at a time
    np.testing.assert_allclose(few.query(X[:2]), X[:2] @ W.T, rtol=1e-15)
    assert box.batches == [(4, 3), (4, 3)]
    box.batches.clear()
    few.query(X[:1])
    assert box.batches == [(4, 3)]
    box.batches.clear()
    default = averaged(oracle, 2)
    default.query(np.zeros((5000, 3)))
    assert [b[0] for b in box.batches] == [8192, 1808]


def test_one_repeat_is_the_oracle_itself_and_fewer_are_refused():
    oracle, _ = _oracle()
    assert averaged(oracle, 1) is oracle
    assert averaged(oracle, 2) is not oracle
    for bad in (0, -1):
        with pytest.raises(GlassboxError, match=f"repeats must be at least 1, got {bad}"):
            averaged(oracle, bad)


def test_a_limit_counts_from_where_it_starts_and_refuses_before_asking():
    oracle, box = _oracle()
    oracle.query(X[:4])  # spent before the limit: not its concern
    lim = limited(oracle, 6)
    lim.query(X[:5])
    with pytest.raises(QueryBudgetExceeded) as info:
        lim.query(X[:2])  # 5 + 2 > 6 (5 - 2 would not be)
    assert (info.value.budget, info.value.spent, info.value.asked) == (6, 5, 2)
    lim.query(X[:1])  # exactly the limit
    assert oracle.queries == lim.queries == 10 and len(box.batches) == 3
    with pytest.raises(QueryBudgetExceeded):
        lim.query(X[:1])


def test_a_limit_over_averaged_answers_counts_repeats_per_row():
    oracle, _ = _oracle()
    lim = limited(averaged(oracle, 3), 9, per_row=3)
    lim.query(X[:2])  # 6 answers
    with pytest.raises(QueryBudgetExceeded) as info:
        lim.query(X[:2])  # 6 more would make 12 > 9
    assert (info.value.spent, info.value.asked) == (6, 6)
    lim.query(X[0])  # a single row: 3 answers, exactly 9
    assert oracle.queries == 9
    assert limited(oracle, 1).query(X[:1]).shape == (1, 2)  # a limit of one is valid
    for bad in [(0, 1), (1, 0)]:
        with pytest.raises(GlassboxError, match="query limit and per_row must be at least 1"):
            limited(oracle, *bad)


def test_rounded_digits_must_be_between_1_and_17():
    oracle, _ = _oracle()
    for good in (1, 17):
        rounded(oracle, good).query(X[:1])
    for bad in (0, 18):
        with pytest.raises(
            GlassboxError, match=f"significant digits must be between 1 and 17, got {bad}"
        ):
            rounded(oracle, bad)
    np.testing.assert_array_equal(rounded(oracle, 2).query([[1.0, 0.0, 0.0]]), [[1.0, 0.25]])
    np.testing.assert_array_equal(rounded(oracle, 1).query([[0.0, 0.0, 1.0]]), [[0.5, 3.0]])


def test_noise_of_zero_is_exact_and_its_default_seed_is_zero():
    oracle, _ = _oracle()
    np.testing.assert_array_equal(noisy(oracle, 0.0).query(X), X @ W.T)
    a = noisy(_oracle()[0], 0.5).query(X)
    b = noisy(_oracle()[0], 0.5, seed=0).query(X)
    np.testing.assert_array_equal(a, b)
    expected = X @ W.T + np.random.default_rng(0).normal(0.0, 0.5, size=(10, 2))
    np.testing.assert_array_equal(a, expected)
    for bad in (-0.1, np.inf, np.nan):
        with pytest.raises(GlassboxError, match="noise sigma must be finite and non-negative"):
            noisy(oracle, bad)


def test_labels_of_a_single_output_are_strictly_positive_decisions():
    box = FunctionOracle(lambda x: x[:, :1] - 1.0, input_dim=3, output_dim=1)
    labels = label_only(box)
    assert labels.output_dim == 1
    x = np.array([[0.0, 0, 0], [1.0, 0, 0], [1.5, 0, 0], [2.0, 0, 0]])  # y = -1, 0, 0.5, 1
    np.testing.assert_array_equal(labels.query(x), [[0.0], [0.0], [1.0], [1.0]])


def test_labels_of_several_outputs_are_the_argmax_as_one_column():
    box = FunctionOracle(lambda x: x, input_dim=3, output_dim=3)
    labels = label_only(box)
    assert labels.output_dim == 1
    x = np.array([[0.0, 2.0, 1.0], [3.0, -1.0, 0.0], [0.0, 0.0, 5.0], [1.0, 1.0, 0.0]])
    np.testing.assert_array_equal(labels.query(x), [[1.0], [0.0], [2.0], [0.0]])
    two = label_only(FunctionOracle(lambda x: x[:, :2], input_dim=3, output_dim=2))
    np.testing.assert_array_equal(two.query(x), [[1.0], [0.0], [0.0], [0.0]])


def test_wrappers_keep_the_inner_dimensions():
    oracle, _ = _oracle()
    for wrapped in (float32_outputs(oracle), finite_answers(oracle), row_capped(oracle, 2)):
        assert (wrapped.input_dim, wrapped.output_dim) == (3, 2)
