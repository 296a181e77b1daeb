"""The model kinds and the feature statistics of a toy config, without torch.

Kept apart from ``models.py`` and ``data.py`` (which need torch) so that a config can be
built and checked, and the CLI can refuse bad arguments, before torch is imported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glassbox.errors import GlassboxError


@dataclass(frozen=True)
class Kind:
    """How one model kind computes: activations, weight tying and the target."""

    name: str
    hidden_relu: bool
    output_relu: bool
    tied: bool
    target: str  # "abs" or "identity"
    signed_inputs: bool
    max_hidden_per_feature: int  # m beyond this many per feature is a dedicated dimension for all


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("linear", False, False, True, "identity", False, 1),
        Kind("relu-output", False, True, True, "identity", False, 1),
        Kind("relu-hidden", True, True, True, "identity", False, 1),
        Kind("abs", True, True, False, "abs", True, 2),
    )
}


def importance_schedule(n_features: int, decay: float) -> NDArray[np.float64]:
    """The geometric importance ``I_i = decay**i`` for ``i = 0 .. n-1`` (feature 0 matters most)."""
    if not 0.0 < decay <= 1.0:
        raise GlassboxError(f"importance decay {decay} must be in (0, 1]; 1 means equal importance")
    return np.asarray(decay ** np.arange(n_features, dtype=np.float64))


def importance_vector(importance: float | ArrayLike, n_features: int) -> NDArray[np.float64]:
    """Importance as a length-``n`` vector: a float is a geometric decay, a sequence is used as given."""
    if np.ndim(importance) == 0:
        return importance_schedule(n_features, float(importance))  # type: ignore[arg-type]
    vec = np.asarray(importance, dtype=np.float64)
    if vec.shape != (n_features,):
        raise GlassboxError(
            f"importance has {vec.size} values but there are {n_features} features; "
            "give one per feature or a single decay factor"
        )
    if not np.all(np.isfinite(vec)) or np.any(vec < 0) or not np.any(vec > 0):
        raise GlassboxError("importance values must be finite, non-negative and not all zero")
    return vec


def feature_probability(
    sparsity: ArrayLike, n_features: int, n_instances: int | None = None
) -> NDArray[np.float64]:
    """``1 - S`` as an ``(instances, features)`` array from a scalar, per-instance or per-feature ``S``."""
    s = np.asarray(sparsity, dtype=np.float64)
    if s.ndim == 0:
        s = s.reshape(1, 1)
    elif s.ndim == 1:
        # A flat sequence is one value per instance; use shape (1, n) for per-feature values.
        s = s[:, None]
    if s.ndim != 2 or s.shape[1] not in (1, n_features):
        raise GlassboxError(
            f"sparsity of shape {np.shape(sparsity)} does not fit {n_features} features; "
            "give a scalar, one value per instance, or an (instances, features) array"
        )
    if not np.all(np.isfinite(s)) or np.any(s < 0.0) or np.any(s >= 1.0):
        bad = s[~(np.isfinite(s) & (s >= 0.0) & (s < 1.0))].flat[0]
        raise GlassboxError(
            f"sparsity {bad} is outside [0, 1): S is the probability that a feature is zero, "
            "and S = 1 would make every input zero"
        )
    rows = s.shape[0] if n_instances is None else n_instances
    if s.shape[0] not in (1, rows):
        raise GlassboxError(f"sparsity has {s.shape[0]} rows but there are {rows} instances")
    return np.broadcast_to(1.0 - s, (rows, n_features)).copy()
