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

import torch

from glassbox.toy.kinds import feature_probability, importance_schedule, importance_vector

__all__ = ["feature_probability", "importance_schedule", "importance_vector"]


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
