"""Oracles: the only thing the attack may touch. They answer batches of queries and count every row."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glassbox.errors import GlassboxError

Array = NDArray[np.float64]

UNLABELLED = "other"


class QueryBudgetExceeded(RuntimeError):
    """Raised when a query would take the oracle past its budget; nothing is answered."""

    def __init__(self, budget: int, spent: int, asked: int) -> None:
        super().__init__(
            f"query budget exhausted: {spent} of {budget} queries spent, {asked} more asked for"
        )
        self.budget = budget
        self.spent = spent
        self.asked = asked


class Oracle(ABC):
    """A black box ``query(X) -> Y`` that counts every row it answers, per labelled phase."""

    def __init__(self, input_dim: int, output_dim: int, budget: int | None = None) -> None:
        if input_dim < 1 or output_dim < 1:
            raise GlassboxError(
                f"oracle dimensions must be positive, got {input_dim} -> {output_dim}"
            )
        if budget is not None and budget < 0:
            raise GlassboxError(f"query budget must be non-negative, got {budget}")
        self._input_dim = int(input_dim)
        self._output_dim = int(output_dim)
        self._budget = budget
        self._by_phase: dict[str, int] = {}
        self._phases: list[str] = []

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
        return self._budget

    @property
    def queries(self) -> int:
        """Rows answered so far."""
        return sum(self._by_phase.values())

    @property
    def queries_by_phase(self) -> dict[str, int]:
        """Rows answered so far, by the innermost phase label active when they were asked."""
        return dict(self._by_phase)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Attribute the queries made inside the block to ``name``."""
        self._phases.append(name)
        try:
            yield
        finally:
            self._phases.pop()

    def query(self, X: ArrayLike) -> Array:
        """Answer a batch ``X`` of shape ``(k, input_dim)``; counts ``k`` queries."""
        x = np.asarray(X, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self._input_dim:
            raise GlassboxError(f"query has shape {np.shape(X)}; expected (k, {self._input_dim})")
        if not np.all(np.isfinite(x)):
            raise GlassboxError("query contains NaN or infinite values")
        k = x.shape[0]
        spent = self.queries
        if self._budget is not None and spent + k > self._budget:
            raise QueryBudgetExceeded(self._budget, spent, k)
        label = self._phases[-1] if self._phases else UNLABELLED
        self._by_phase[label] = self._by_phase.get(label, 0) + k
        y = np.asarray(self._answer(x))
        if y.shape != (k, self._output_dim):
            raise GlassboxError(
                f"black box answered shape {y.shape}; expected ({k}, {self._output_dim})"
            )
        return y

    @abstractmethod
    def _answer(self, X: Array) -> Array:
        """Compute the outputs for a validated batch (subclasses implement this)."""


class FunctionOracle(Oracle):
    """An oracle over a function ``f(X) -> Y`` on batches."""

    def __init__(
        self,
        f: Callable[[Array], ArrayLike],
        input_dim: int,
        output_dim: int,
        budget: int | None = None,
    ) -> None:
        super().__init__(input_dim, output_dim, budget)
        self.__f = f

    def _answer(self, X: Array) -> Array:
        return np.asarray(self.__f(X), dtype=np.float64).reshape(X.shape[0], self.output_dim)


def net_oracle(net: object, budget: int | None = None) -> Oracle:
    """An in-process oracle over a :class:`glassbox.mlp.ReLUNet`; it exposes only its dimensions."""
    from glassbox.mlp import ReLUNet

    if not isinstance(net, ReLUNet):
        raise GlassboxError(f"net_oracle needs a ReLUNet, got {type(net).__name__}")
    forward = net.forward
    return FunctionOracle(lambda X: forward(X), net.input_dim, net.output_dim, budget)
