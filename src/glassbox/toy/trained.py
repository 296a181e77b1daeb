"""A trained run in memory: its config, the kept instance of each configuration, and its metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet
from glassbox.toy import analysis, summary
from glassbox.toy.config import ToyConfig


@dataclass(frozen=True, eq=False)
class TrainedRun:
    """A trained run: its config, the kept instance of each configuration, and its metrics.

    ``weights`` holds float32 arrays exactly as trained: ``W1 (C, m, n)``, ``b (C, n)``
    and, for the untied abs model, ``W2 (C, n, m)``; ``C`` is the number of sparsity values.
    """

    config: ToyConfig
    weights: dict[str, NDArray[np.float32]]
    metrics: dict[str, Any]

    @property
    def n_instances(self) -> int:
        """Number of kept instances (one per sparsity value)."""
        return int(self.weights["W1"].shape[0])

    def instance_weights(
        self, i: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """``(W1 (m, n), W2 (n, m), b (n,))`` of instance ``i`` in float64; ``W2 = W1.T`` when tied."""
        if not 0 <= i < self.n_instances:
            raise GlassboxError(f"instance {i} does not exist; this run has {self.n_instances}")
        w1 = self.weights["W1"][i].astype(np.float64)
        w2 = w1.T.copy() if self.config.kind.tied else self.weights["W2"][i].astype(np.float64)
        return w1, w2, self.weights["b"][i].astype(np.float64)

    def instance_net(self, i: int) -> ReLUNet:
        """Instance ``i`` as a float64 :class:`ReLUNet` computing exactly what it was trained as.

        abs and relu-hidden: ``ReLU(W2 ReLU(W1 x) + b)`` (no hidden bias, output ReLU).
        relu-output and linear have no hidden ReLU, so they are one layer ``W^T W``.
        """
        kind = self.config.kind
        w1, w2, b = self.instance_weights(i)
        if kind.hidden_relu:
            return ReLUNet([w1, w2], [None, b], output_relu=kind.output_relu)
        return ReLUNet([w2 @ w1], [b], output_relu=kind.output_relu)

    def instance_init(self, i: int) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
        """``(W1, W2)`` that instance ``i`` started from (regenerated from the seed), float64.

        None when the metrics do not say which restart was kept.
        """
        kept = self.metrics.get("kept_restart")
        if kept is None or not 0 <= i < len(kept):
            return None
        from glassbox.toy.seeds import initial_params

        start = initial_params(self.config, int(kept[i]))
        w1 = start["W1"][0].numpy().astype(np.float64)
        w2 = w1.T.copy() if self.config.kind.tied else start["W2"][0].numpy().astype(np.float64)
        return w1, w2

    def sparsity(self, i: int) -> float:
        """The mean sparsity ``S`` of instance ``i`` (its scalar S unless given per feature)."""
        return float(1.0 - self.config.probability()[i].mean())

    def baseline_loss(self) -> NDArray[np.float64]:
        """Per instance, the loss of the best constant output (see :func:`analysis.constant_baseline`)."""
        return analysis.constant_baseline(
            self.config.probability(), self.config.importance_vector()
        )

    def summary(self, i: int) -> dict[str, Any]:
        """The analysis headline numbers for instance ``i`` (see :mod:`glassbox.toy.analysis`)."""
        kind = self.config.kind
        w1, w2, b = self.instance_weights(i)
        if not kind.hidden_relu:
            return summary.summarize_tied(w1, b)
        return summary.summarize(
            w1,
            w2,
            b,
            signed_inputs=kind.signed_inputs,
            target=kind.target,
            init=self.instance_init(i),
        )
