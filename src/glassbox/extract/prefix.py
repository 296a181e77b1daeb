"""The recovered prefix: layers ``1..i-1`` with signs known, evaluated at no query cost.

Each recovered neuron is known up to a positive scale, which changes no activation
pattern and no hyperplane, so the prefix gives, for any input, every earlier neuron's
pre-activation (up to that scale), the hidden state that feeds layer ``i`` and the local
affine map ``h = J x + c`` of the linear region the input lies in.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

# Relative singular value below which a direction of the local map counts as lost.
RANK_TOLERANCE = 1e-9


@dataclass
class Prefix:
    """Recovered hidden layers ``(W_l, b_l)``; empty for the first layer (``h = x``)."""

    input_dim: int
    weights: list[Array] = field(default_factory=list)
    biases: list[Array] = field(default_factory=list)

    @property
    def depth(self) -> int:
        """Number of recovered hidden layers."""
        return len(self.weights)

    @property
    def width(self) -> int:
        """Width of the hidden state that feeds the next layer."""
        return self.weights[-1].shape[0] if self.weights else self.input_dim

    def _identity(self) -> Array:
        return _identity(self.input_dim)

    def push(self, W: Array, b: Array) -> None:
        """Append a recovered layer (rows signed so that ``W h + b > 0`` means active)."""
        self.weights.append(np.array(W, dtype=np.float64))
        self.biases.append(np.array(b, dtype=np.float64))

    def preactivations(self, X: Array) -> list[Array]:
        """Every prefix layer's pre-activations for a batch ``X``."""
        out, a = [], np.atleast_2d(X)
        for W, b in zip(self.weights, self.biases, strict=True):
            z = a @ W.T + b
            out.append(z)
            a = np.maximum(z, 0.0)
        return out

    def state(self, X: Array) -> Array:
        """The hidden state that feeds the next layer (the inputs themselves for layer 1)."""
        pre = self.preactivations(X)
        return np.maximum(pre[-1], 0.0) if pre else np.atleast_2d(X).copy()

    def _layers_at(self, x: Array) -> Iterator[tuple[Array, Array, Array]]:
        """Per prefix layer, ``(G, k, z)``: its pre-activations are ``G y + k`` in ``x``'s
        linear region and ``z`` at ``x`` (the one walk every local quantity uses)."""
        J: Array = self._identity()
        c = np.zeros(self.input_dim)
        for W, b in zip(self.weights, self.biases, strict=True):
            G = W @ J
            k = W @ c + b
            z = G @ x + k
            yield G, k, z
            on = (z > 0).astype(np.float64)
            J = on[:, None] * G
            c = on * k

    def local_map(self, x: Array) -> tuple[Array, Array]:
        """``(J, c)`` with ``state(y) = J y + c`` for every ``y`` in ``x``'s linear region."""
        if not self.weights:
            return self._identity(), np.zeros(self.input_dim)
        *_, (G, k, z) = self._layers_at(x)
        on = (z > 0).astype(np.float64)
        return on[:, None] * G, on * k

    def last_preact_map(self, x: Array) -> tuple[Array, Array]:
        """``(G, z0)`` with the last prefix layer's pre-activations ``G y + z0`` near ``x``."""
        if not self.weights:
            raise ValueError("the empty prefix has no pre-activations")
        *_, (G, k, _) = self._layers_at(x)
        return G, k

    def normal(self, theta: Array, x: Array) -> Array:
        """Unit input-space normal at ``x`` of the (bent) hyperplane ``theta . (h, 1) = 0``;
        zero where the row sees none of the active coordinates (no plane there)."""
        J, _ = self.local_map(x)
        g = J.T @ theta[:-1]
        norm = float(np.linalg.norm(g))
        return np.asarray(g / norm if norm > 0 else g, dtype=np.float64)

    def scaled_margins(self, X: Array) -> Array:
        """Each prefix neuron's distance to its own bent hyperplane, to first order, per input.

        ``|z| / |grad z|`` in input space, from the local map of the region ``X`` lies
        in; a row of ``inf`` for the first layer. Small means "on a prefix hyperplane".
        """
        X = np.atleast_2d(X)
        if not self.weights:
            return np.full((X.shape[0], 0), np.inf)
        tiny = np.finfo(np.float64).tiny
        return np.array(
            [
                np.concatenate(
                    [
                        np.abs(z) / np.maximum(np.linalg.norm(G, axis=1), tiny)
                        for G, _, z in self._layers_at(x)
                    ]
                )
                for x in X
            ]
        )

    def room(self, x: Array, u: Array) -> float:
        """How far from ``x`` along ``+-u`` (unit) no prefix neuron changes state (to first order)."""
        best = np.inf
        with np.errstate(divide="ignore"):
            for G, _, z in self._layers_at(x):
                best = min(best, float(np.min(np.abs(z) / np.abs(G @ u))))
        return best


@functools.lru_cache(maxsize=4)
def _identity(n: int) -> Array:
    eye = np.eye(n)
    eye.flags.writeable = False
    return eye


def row_space(J: Array) -> tuple[Array, int]:
    """An orthonormal basis ``(d0, r)`` of the input directions the local map ``J`` sees, and r."""
    if J.shape[0] == 0:
        return np.zeros((J.shape[1], 0)), 0
    if J.shape[0] == J.shape[1] and np.array_equal(J, np.eye(J.shape[0])):
        return J.copy(), J.shape[0]  # the first layer sees every input direction
    _, s, Vt = np.linalg.svd(J, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return np.zeros((J.shape[1], 0)), 0
    r = int(np.sum(s > RANK_TOLERANCE * s[0]))
    return Vt[:r].T.copy(), r
