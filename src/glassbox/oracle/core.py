"""Oracles: the only thing the attack may touch. They answer batches of queries and count every row.

An oracle exposes its input and output dimensions, its budget and its query counts, and
nothing else: the function behind it lives in a name-mangled private attribute, so attack
code that keeps to the public interface cannot reach the weights (tests/test_oracle_isolation.py
checks that the attack modules keep to it).

Weakening wrappers (:func:`float32_outputs`, :func:`rounded`, :func:`noisy`,
:func:`label_only`) answer like deployed APIs do. A wrapper shares the counting ledger of
the oracle it wraps, so a row is counted once however many wrappers it passes through, and
the budget is the innermost oracle's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glassbox.errors import GlassboxError

Array = NDArray[np.float64]

UNLABELLED = "other"
PROBE = "probe"


class QueryBudgetExceeded(RuntimeError):
    """Raised when a query would take the oracle past its budget; nothing is answered."""

    def __init__(self, budget: int, spent: int, asked: int) -> None:
        super().__init__(
            f"query budget exhausted: {spent} of {budget} queries spent, {asked} more asked for"
        )
        self.budget = budget
        self.spent = spent
        self.asked = asked


class _Ledger:
    """Query counts per phase and the budget; shared by an oracle and every wrapper around it."""

    def __init__(self, budget: int | None) -> None:
        if budget is not None and budget < 0:
            raise GlassboxError(f"query budget must be non-negative, got {budget}")
        self.budget = budget
        self.by_phase: dict[str, int] = {}
        self.phases: list[str] = []

    @property
    def spent(self) -> int:
        return sum(self.by_phase.values())

    def check(self, k: int) -> None:
        """Raise, counting nothing, if ``k`` more rows would take the ledger past its budget."""
        if self.budget is not None and self.spent + k > self.budget:
            raise QueryBudgetExceeded(self.budget, self.spent, k)

    def charge(self, k: int) -> None:
        """Count ``k`` rows against the innermost phase, or raise before counting any."""
        self.check(k)
        label = self.phases[-1] if self.phases else UNLABELLED
        self.by_phase[label] = self.by_phase.get(label, 0) + k


class Oracle(ABC):
    """A black box ``query(X) -> Y`` that counts every row it answers, per labelled phase."""

    def __init__(self, input_dim: int, output_dim: int, budget: int | None = None) -> None:
        if input_dim < 1 or output_dim < 1:
            raise GlassboxError(
                f"oracle dimensions must be positive, got {input_dim} -> {output_dim}"
            )
        self._input_dim = int(input_dim)
        self._output_dim = int(output_dim)
        self._ledger = _Ledger(budget)

    @property
    def input_dim(self) -> int:
        """Number of inputs the black box takes."""
        return self._input_dim

    @property
    def output_dim(self) -> int:
        """Number of outputs it returns."""
        return self._output_dim

    @property
    def budget(self) -> int | None:
        """The most rows this oracle will answer in total (None: unlimited)."""
        return self._ledger.budget

    @property
    def queries(self) -> int:
        """Rows answered so far."""
        return self._ledger.spent

    @property
    def queries_by_phase(self) -> dict[str, int]:
        """Rows answered so far, by the innermost phase label active when they were asked."""
        return dict(self._ledger.by_phase)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Attribute the queries made inside the block to ``name``."""
        self._ledger.phases.append(name)
        try:
            yield
        finally:
            self._ledger.phases.pop()

    def query(self, X: ArrayLike) -> Array:
        """Answer a batch ``X`` of shape ``(k, input_dim)``; counts ``k`` queries."""
        x = np.asarray(X, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self._input_dim:
            raise GlassboxError(f"query has shape {np.shape(X)}; expected (k, {self._input_dim})")
        if not np.all(np.isfinite(x)):
            raise GlassboxError("query contains NaN or infinite values")
        # The whole batch's cost first (averaging inside asks each row several times), so
        # that a refused batch is counted nowhere.
        self._ledger.check(x.shape[0] * self._rows_per_row())
        self._ledger.charge(x.shape[0])
        return self._answer_checked(x)

    def _rows_per_row(self) -> int:
        """Rows the black box answers per row asked here (more than one under averaging)."""
        return 1

    def _answer_checked(self, X: Array) -> Array:
        y = np.asarray(self._answer(X))
        if y.shape != (X.shape[0], self._output_dim):
            raise GlassboxError(
                f"black box answered shape {y.shape}; expected ({X.shape[0]}, {self._output_dim})"
            )
        return y

    @abstractmethod
    def _answer(self, X: Array) -> Array:
        """Compute the outputs for a validated batch (subclasses implement this)."""


def _discover_input_dim(f: Callable[..., Any]) -> int | None:
    # A fitted scikit-learn style estimator (or its bound predict) knows its input width.
    for owner in (f, getattr(f, "__self__", None)):
        n = getattr(owner, "n_features_in_", None)
        if isinstance(n, int | np.integer):
            return int(n)
    return None


class FunctionOracle(Oracle):
    """An oracle over a function ``f(X) -> Y`` on batches, e.g. a fitted estimator's ``predict``.

    ``input_dim`` may be left out when ``f`` (or the object it is bound to) has an
    ``n_features_in_``. ``output_dim`` may be left out: it is then probed with one query
    of zeros, counted under the phase ``"probe"``. A 1-D answer means one output.
    """

    def __init__(
        self,
        f: Callable[[Array], ArrayLike],
        input_dim: int | None = None,
        output_dim: int | None = None,
        budget: int | None = None,
    ) -> None:
        if input_dim is None:
            input_dim = _discover_input_dim(f)
            if input_dim is None:
                raise GlassboxError(
                    "cannot tell the black box's input dimension: pass input_dim explicitly"
                )
        probing = output_dim is None
        super().__init__(input_dim, 1 if output_dim is None else output_dim, budget)
        self.__f = f
        if probing:
            with self.phase(PROBE):
                self._ledger.charge(1)
            answer = np.asarray(f(np.zeros((1, input_dim))))
            if answer.size < 1:
                raise GlassboxError("the black box answered an empty array to a probe query")
            self._output_dim = int(answer.size)

    def _answer(self, X: Array) -> Array:
        y = np.asarray(self.__f(X), dtype=np.float64)
        if y.size != X.shape[0] * self.output_dim:
            raise GlassboxError(
                f"black box answered shape {y.shape}; expected ({X.shape[0]}, {self.output_dim})"
            )
        return y.reshape(X.shape[0], self.output_dim)


def net_oracle(net: object, budget: int | None = None) -> Oracle:
    """An in-process oracle over a :class:`glassbox.mlp.ReLUNet`; it exposes only its dimensions."""
    from glassbox.mlp import ReLUNet

    if not isinstance(net, ReLUNet):
        raise GlassboxError(f"net_oracle needs a ReLUNet, got {type(net).__name__}")
    forward = net.forward
    return FunctionOracle(lambda X: forward(X), net.input_dim, net.output_dim, budget)


class _Weakened(Oracle):
    """An oracle that transforms another's answers and shares its ledger (one count per row)."""

    def __init__(
        self, inner: Oracle, transform: Callable[[Array], Array], output_dim: int | None = None
    ) -> None:
        if not isinstance(inner, Oracle):
            raise GlassboxError(f"can only weaken an Oracle, got {type(inner).__name__}")
        super().__init__(inner.input_dim, output_dim or inner.output_dim)
        self._ledger = inner._ledger
        self.__inner_answer = inner._answer_checked
        self.__inner_rows = inner._rows_per_row
        self.__transform = transform

    def _rows_per_row(self) -> int:
        return self.__inner_rows()

    def _answer(self, X: Array) -> Array:
        return self.__transform(self.__inner_answer(X))


class _RowCapped(_Weakened):
    """Answers in batches of at most ``max_rows`` rows (the black box never sees a bigger one)."""

    def __init__(self, inner: Oracle, max_rows: int) -> None:
        super().__init__(inner, lambda y: y)
        self.__max_rows = max_rows

    def _answer(self, X: Array) -> Array:
        m = self.__max_rows
        parts = []
        for i in range(0, max(X.shape[0], 1), m):
            parts.append(super()._answer(X[i : i + m]))
        return np.vstack(parts)


def row_capped(oracle: Oracle, max_rows: int) -> Oracle:
    """The same oracle (same count, same budget), asked at most ``max_rows`` rows per batch."""
    if max_rows < 1:
        raise GlassboxError(f"max_rows must be at least 1, got {max_rows}")
    return _RowCapped(oracle, max_rows)


class NonFiniteAnswer(RuntimeError):
    """Raised when the black box answers NaN or infinity; the attack stops with the reason."""


def _finite(y: Array) -> Array:
    if not np.all(np.isfinite(y)):
        rows = np.flatnonzero(~np.all(np.isfinite(y), axis=1))
        what = "NaN" if np.any(np.isnan(y)) else "infinity"
        raise NonFiniteAnswer(
            f"answers contain {what} ({rows.size} of {y.shape[0]} rows of one batch): "
            "not a ReLU network's output, or an overflow inside the black box"
        )
    return y


def finite_answers(oracle: Oracle) -> Oracle:
    """The same oracle, raising :class:`NonFiniteAnswer` at the first batch with NaN or inf."""
    return _Weakened(oracle, _finite)


class _Averaged(_Weakened):
    """Each row asked ``repeats`` times and the answers averaged (every repeat is counted)."""

    def __init__(self, inner: Oracle, repeats: int, max_rows: int) -> None:
        super().__init__(inner, lambda y: y)
        self.__repeats = repeats
        self.__chunk = max(1, max_rows // repeats)

    def _rows_per_row(self) -> int:
        return self.__repeats * super()._rows_per_row()

    def _answer(self, X: Array) -> Array:
        r, m = self.__repeats, self.__chunk
        self._ledger.charge((r - 1) * X.shape[0])
        parts = []
        for i in range(0, max(X.shape[0], 1), m):
            Y = super()._answer(np.repeat(X[i : i + m], r, axis=0))
            parts.append(Y.reshape(-1, r, Y.shape[1]).mean(axis=1))
        return np.vstack(parts)


def averaged(oracle: Oracle, repeats: int, max_rows: int = 8192) -> Oracle:
    """Answers averaged over ``repeats`` queries of each row (noise shrinks as sqrt(repeats)).

    The black box is asked at most ``max(max_rows, repeats)`` rows at a time.
    """
    if repeats < 1:
        raise GlassboxError(f"repeats must be at least 1, got {repeats}")
    return oracle if repeats == 1 else _Averaged(oracle, repeats, max_rows)


class _Limited(_Weakened):
    """Refuses, before answering, a batch that would take it past ``limit`` rows of its own."""

    def __init__(self, inner: Oracle, limit: int, per_row: int) -> None:
        super().__init__(inner, lambda y: y)
        self.__limit = limit
        self.__per_row = per_row
        self.__start = inner.queries

    def query(self, X: ArrayLike) -> Array:
        k = self.__per_row * int(np.shape(np.atleast_2d(np.asarray(X)))[0])
        spent = self.queries - self.__start
        if spent + k > self.__limit:
            raise QueryBudgetExceeded(self.__limit, spent, k)
        return super().query(X)


def limited(oracle: Oracle, limit: int, per_row: int = 1) -> Oracle:
    """The same oracle (same count) that refuses to answer more than ``limit`` further rows.

    ``per_row``: rows the black box answers per row asked (an :func:`averaged` oracle's repeats).
    """
    if limit < 1 or per_row < 1:
        raise GlassboxError(f"query limit and per_row must be at least 1, got {limit}, {per_row}")
    return _Limited(oracle, limit, per_row)


def float32_outputs(oracle: Oracle) -> Oracle:
    """Answers rounded to float32 (returned as float64 arrays holding float32 values)."""
    return _Weakened(oracle, lambda y: y.astype(np.float32).astype(np.float64))


def round_significant(y: Array, digits: int) -> Array:
    """Round every entry to ``digits`` significant decimal digits (the nearest double to that decimal)."""
    # Decimal formatting is the exact reference; scaling by powers of ten misrounds near ties.
    text = np.char.mod(f"%.{digits - 1}e", np.asarray(y, dtype=np.float64))
    return np.asarray(text, dtype=np.str_).astype(np.float64)


def rounded(oracle: Oracle, digits: int) -> Oracle:
    """Answers rounded to ``digits`` significant decimal digits, like an API printing ``%.{d-1}e``."""
    if not 1 <= digits <= 17:
        raise GlassboxError(f"significant digits must be between 1 and 17, got {digits}")
    return _Weakened(oracle, lambda y: round_significant(y, digits))


def noisy(oracle: Oracle, sigma: float, seed: int = 0) -> Oracle:
    """Answers plus fresh N(0, sigma^2) noise on every entry of every query (seeded stream)."""
    if not (np.isfinite(sigma) and sigma >= 0):
        raise GlassboxError(f"noise sigma must be finite and non-negative, got {sigma}")
    rng = np.random.default_rng(seed)
    return _Weakened(oracle, lambda y: y + rng.normal(0.0, sigma, size=y.shape))


def label_only(oracle: Oracle) -> Oracle:
    """Only the top-1 label, as a float in a ``(k, 1)`` array.

    With several outputs the label is the argmax (lowest index on ties); with one output
    it is the binary decision ``1.0 if y > 0 else 0.0``.
    """
    if oracle.output_dim == 1:
        return _Weakened(oracle, lambda y: (y > 0).astype(np.float64), 1)
    return _Weakened(oracle, lambda y: np.argmax(y, axis=1).astype(np.float64)[:, None], 1)
