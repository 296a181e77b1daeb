"""Sparse synthetic features and importance schedules for the toy models.

Each feature ``x_i`` is zero with probability ``S_i`` and otherwise uniform: on
``[0, 1]`` for the earlier sections' models, on ``[-1, 1]`` for the abs(x) task.

Sampling is split in two so that it can be both cheap and reproducible:
:func:`draw_uniforms` takes the random numbers from seeded generators, one per
restart, and :func:`sparse_features` turns them into features for every instance.
Instances that share a restart share their uniforms and differ only in the sparsity
threshold (common random numbers). That makes a batched run's instance identical to
the same configuration trained alone, and it draws ``instances / restarts`` times
fewer random numbers than one stream per instance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from glassbox.errors import GlassboxError


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


def draw_uniforms(
    generators: Sequence[torch.Generator],
    batch: int,
    n_features: int,
    out: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two ``(restarts, batch, features)`` U[0, 1) draws, restart ``r`` from ``generators[r]``.

    The first decides presence, the second the value. One generator per restart makes
    restart ``r`` the same whatever the number of restarts.
    """
    shape = (len(generators), batch, n_features)
    device = generators[0].device
    if out is None:
        out = (torch.empty(shape, device=device), torch.empty(shape, device=device))
    keep, value = out
    for r, gen in enumerate(generators):
        torch.rand(shape[1:], generator=gen, device=device, out=keep[r])
        torch.rand(shape[1:], generator=gen, device=device, out=value[r])
    return keep, value


def sparse_features(
    keep: torch.Tensor,
    value: torch.Tensor,
    probability: torch.Tensor,
    signed: bool,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Features ``(configs * restarts, batch, n)`` from uniforms ``(restarts, batch, n)``.

    ``probability`` is ``(configs * restarts, n)``, instance ``c * restarts + r`` using
    restart ``r``'s uniforms. A feature is present where ``keep < p`` and then equals
    ``value`` (or ``2 * value - 1`` when ``signed``). ``out`` is reused if given, so the
    training loop allocates nothing per step.
    """
    n_restarts, batch, n_features = keep.shape
    n_instances = probability.shape[0]
    if n_instances % n_restarts:
        raise ValueError(f"{n_instances} instances is not a multiple of {n_restarts} restarts")
    shape4 = (n_instances // n_restarts, n_restarts, batch, n_features)
    if out is None:
        out = torch.empty((n_instances, batch, n_features), dtype=keep.dtype, device=keep.device)
    x = out.view(shape4)
    # The 0/1 mask times the value (no dtype-changing out= write, so CUDA runs it too).
    present = torch.lt(keep, probability.view(shape4[0], n_restarts, 1, n_features))
    torch.mul(present, value.mul(2.0).sub_(1.0) if signed else value, out=x)
    return out
