"""The optimiser of the toy trainer: AdamW in plain elementwise ops (fused when compiled), and its schedule."""

from __future__ import annotations

import math

import numpy as np
import torch

from glassbox.toy.models import (
    compiled,
)


def lr_factor(step: int, steps: int, schedule: str, warmup: int = 0) -> float:
    """The multiplier on the base learning rate at ``step`` (0-based): linear warmup, then the schedule."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(steps - warmup, 1)
    if schedule == "linear":
        return 1.0 - t
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return 1.0


class AdamW:
    """AdamW (decoupled weight decay) written with plain elementwise ops.

    torch's fused and foreach kernels use multiply-adds whose rounding differs between
    their vectorised body and scalar tail, so an element's update would depend on where
    it sits in the tensor, and instance ``i`` of a batched run would drift from the same
    model trained alone. Multiplies, adds, divides and square roots round identically
    everywhere, so this one is bit-exact per element. Defaults are torch's.

    ``lr`` is one number, or one per instance (the leading dimension of every parameter);
    the per-instance factors are rounded to float32 exactly as a Python scalar would be,
    so equal per-instance rates give the same bits as the scalar.
    """

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: float | np.ndarray = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        self.params, self.lr, self.betas, self.eps, self.weight_decay = (
            params,
            lr,
            betas,
            eps,
            weight_decay,
        )
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.scratch = [torch.empty_like(p) for p in params]
        self.t = 0

    def _factor(self, value: np.ndarray, like: torch.Tensor) -> float | torch.Tensor:
        if value.ndim == 0:
            return float(value)
        shape = (-1,) + (1,) * (like.ndim - 1)
        return torch.tensor(value, dtype=like.dtype).view(shape).to(like.device)

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter from its ``.grad``."""
        self.t += 1
        b1, b2 = self.betas
        lr = np.asarray(self.lr, dtype=np.float64)
        decay_all = 1.0 - lr * self.weight_decay
        step_all = lr / (1.0 - b1**self.t)
        root_correction = math.sqrt(1.0 - b2**self.t)
        for p, m, v, tmp in zip(self.params, self.m, self.v, self.scratch, strict=True):
            g = p.grad
            assert g is not None
            decay, step_size = self._factor(decay_all, p), self._factor(step_all, p)
            p.mul_(decay)
            m.mul_(b1).add_(torch.mul(g, 1.0 - b1, out=tmp))
            v.mul_(b2).add_(torch.mul(g, g, out=tmp).mul_(1.0 - b2))
            torch.sqrt(v, out=tmp).div_(root_correction).add_(self.eps)  # denominator
            p.sub_(torch.div(m, tmp, out=tmp).mul_(step_size))


def _adamw_update(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    ms: list[torch.Tensor],
    vs: list[torch.Tensor],
    decays: list[torch.Tensor],
    step_sizes: list[torch.Tensor],
    root_correction: torch.Tensor,
    b1: float,
    b2: float,
    eps: float,
) -> None:
    """:meth:`AdamW.step`'s arithmetic, in the same order, for ``torch.compile`` to fuse."""
    for p, g, m, v, decay, step_size in zip(params, grads, ms, vs, decays, step_sizes, strict=True):
        p.mul_(decay)
        m.mul_(b1).add_(g * (1.0 - b1))
        v.mul_(b2).add_(g * g * (1.0 - b2))
        p.sub_(m / (torch.sqrt(v) / root_correction + eps) * step_size)


class FusedAdamW(AdamW):
    """:class:`AdamW` as one compiled update of every parameter (same arithmetic, fewer passes)."""

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter from its ``.grad``."""
        self.t += 1
        b1, b2 = self.betas
        lr = np.asarray(self.lr, dtype=np.float64)
        decay_all = np.broadcast_to(1.0 - lr * self.weight_decay, (len(self.params[0]),))
        step_all = np.broadcast_to(lr / (1.0 - b1**self.t), (len(self.params[0]),))
        first = self.params[0]
        root = torch.tensor(math.sqrt(1.0 - b2**self.t), dtype=first.dtype)
        grads = [p.grad for p in self.params]
        assert all(g is not None for g in grads)
        compiled(_adamw_update)(
            self.params,
            grads,
            self.m,
            self.v,
            [self._factor(decay_all, p) for p in self.params],
            [self._factor(step_all, p) for p in self.params],
            root.to(first.device),
            b1,
            b2,
            self.eps,
        )
