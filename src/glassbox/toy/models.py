"""The toy models, batched over instances: one tensor program trains many models at once.

Every model is ``h = act1(x W1^T)`` then ``x' = act2(h W2^T + b)`` with shapes
``x (I, B, n)``, ``W1 (I, m, n)``, ``W2 (I, n, m)``, ``b (I, n)``:

    kind          hidden ReLU  output ReLU  weights            target
    linear        no           no           tied, W2 = W1^T     x      (x' = W^T W x + b)
    relu-output   no           yes          tied               x      (x' = ReLU(W^T W x + b))
    relu-hidden   yes          yes          tied               x      (h = ReLU(W x), x' = ReLU(W^T h + b))
    abs           yes          yes          untied             |x|    (h = ReLU(W1 x), y' = ReLU(W2 h + b))

:func:`forward` and :func:`weighted_mse` are the plain definitions (autograd works on
them). :class:`BatchedModel` computes the same loss and its gradient by hand into
preallocated buffers: on a CPU, allocating fresh ``(I, B, n)`` tensors each step costs
more than the arithmetic, and the hand-written backward is five batched matmuls.
"""

from __future__ import annotations

import functools
import math
import shutil
from collections.abc import Callable
from typing import Any

import torch

from glassbox.toy.kinds import KINDS, Kind

__all__ = ["KINDS", "Kind"]


def init_params(
    kind: Kind,
    n_instances: int,
    n_features: int,
    n_hidden: int,
    generator: torch.Generator,
    init_scale: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Xavier-normal weights per instance (std ``init_scale * sqrt(2 / (m + n))``) and zero biases.

    The std uses one instance's fan-in and fan-out, not torch's 3-D fan rule, so an
    instance starts the same whatever the number of instances.
    """
    std = init_scale * math.sqrt(2.0 / (n_features + n_hidden))
    shape = (n_instances, n_hidden, n_features)
    params = {"W1": torch.randn(shape, generator=generator) * std}
    if not kind.tied:
        params["W2"] = torch.randn(shape[0], n_features, n_hidden, generator=generator) * std
    params["b"] = torch.zeros(n_instances, n_features)
    return params


def w2_of(kind: Kind, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The output weights ``W2 (I, n, m)``: ``W1^T`` when tied."""
    return params["W1"].mT if kind.tied else params["W2"]


def forward(kind: Kind, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Outputs ``(I, B, n)`` for inputs ``(I, B, n)``; differentiable with autograd."""
    h = x @ params["W1"].mT
    if kind.hidden_relu:
        h = torch.relu(h)
    out = h @ w2_of(kind, params).mT + params["b"][:, None, :]
    return torch.relu(out) if kind.output_relu else out


def target_of(kind: Kind, x: torch.Tensor) -> torch.Tensor:
    """What the model should output for ``x``: ``|x|`` for abs, ``x`` otherwise."""
    return x.abs() if kind.target == "abs" else x


def weighted_mse(out: torch.Tensor, target: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """Per-instance loss ``mean over batch and features of I_i (x'_i - y_i)^2``, shape ``(I,)``."""
    return (importance * (out - target) ** 2).mean(dim=(1, 2))


class BatchedModel:
    """Parameters of ``I`` instances plus the buffers for a hand-written loss gradient."""

    def __init__(
        self, kind: Kind, params: dict[str, torch.Tensor], importance: torch.Tensor, batch: int
    ) -> None:
        self.kind = kind
        self.params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
        n_inst, n_hidden, n_features = self.params["W1"].shape
        like = self.params["W1"]
        self.importance = importance.to(like)
        # 2 / (B n) folds the mean and the square's derivative into one per-feature scale.
        self.grad_scale = self.importance * (2.0 / (batch * n_features))
        for p in self.params.values():
            p.grad = torch.zeros_like(p)
        self._h = like.new_empty(n_inst, batch, n_hidden)
        self._gh = like.new_empty(n_inst, batch, n_hidden)
        self._out = like.new_empty(n_inst, batch, n_features)
        self._diff = like.new_empty(n_inst, batch, n_features)
        self._g = like.new_empty(n_inst, batch, n_features)
        # Boolean masks, multiplied in: several times faster than masked_fill_ on a CPU.
        self._mask_out = torch.empty(
            n_inst, batch, n_features, dtype=torch.bool, device=like.device
        )
        self._mask_h = torch.empty(n_inst, batch, n_hidden, dtype=torch.bool, device=like.device)
        self._loss = like.new_empty(n_inst, 1, 1)
        self._x: torch.Tensor | None = None  # input and target buffers, made on first use
        self._target: torch.Tensor | None = None

    def sample_loss_and_grad(
        self, keep: torch.Tensor, value: torch.Tensor, probability: torch.Tensor
    ) -> torch.Tensor:
        """Per-instance loss of the batch drawn from uniforms ``keep, value``; gradients into ``.grad``."""
        from glassbox.toy.data import sparse_features

        if self._x is None:
            self._x = torch.empty_like(self._out)
            self._target = torch.empty_like(self._out) if self.kind.target == "abs" else self._x
        x, target = self._x, self._target
        assert target is not None
        sparse_features(keep, value, probability, self.kind.signed_inputs, out=x)
        if self.kind.target == "abs":
            torch.abs(x, out=target)
        return self.loss_and_grad(x, target)

    def loss_and_grad(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-instance :func:`weighted_mse` of ``x``; leaves its gradient in each ``.grad``."""
        kind, p = self.kind, self.params
        W1, b = p["W1"].detach(), p["b"].detach()
        W2 = w2_of(kind, p).detach()
        h, out, diff, g = self._h, self._out, self._diff, self._g
        n_inst = x.shape[0]

        torch.bmm(x, W1.mT, out=h)
        if kind.hidden_relu:
            h.relu_()
        torch.baddbmm(b[:, None, :], h, W2.mT, out=out)
        if kind.output_relu:
            out.relu_()

        torch.sub(out, target, out=diff)
        torch.mul(diff, self.grad_scale, out=g)
        # sum(diff * g) = 2 * loss: a batched dot product, no temporary.
        torch.bmm(diff.view(n_inst, 1, -1), g.view(n_inst, -1, 1), out=self._loss)
        if kind.output_relu:
            g.mul_(torch.gt(out, 0.0, out=self._mask_out))

        # Backward: g is dL/d(pre-output), gh is dL/d(pre-hidden).
        torch.bmm(g, W2, out=self._gh)
        if kind.hidden_relu:
            self._gh.mul_(torch.gt(h, 0.0, out=self._mask_h))
        gW1 = p["W1"].grad
        assert gW1 is not None
        torch.bmm(self._gh.mT, x, out=gW1)
        if kind.tied:
            gW1.baddbmm_(h.mT, g)  # W1^T also serves as W2
        else:
            gW2 = p["W2"].grad
            assert gW2 is not None
            torch.bmm(g.mT, h, out=gW2)
        gb = p["b"].grad
        assert gb is not None
        torch.sum(g, dim=1, out=gb)
        return self._loss.view(n_inst).mul(0.5)


def _fused_loss_and_grad(
    keep: torch.Tensor,
    value: torch.Tensor,
    probability: torch.Tensor,
    W1: torch.Tensor,
    W2: torch.Tensor,
    b: torch.Tensor,
    scale: torch.Tensor,
    hidden_relu: bool,
    output_relu: bool,
    tied: bool,
    abs_target: bool,
    signed: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Sample the batch, then the loss and its gradient, as one program for ``torch.compile``.

    The same arithmetic as :func:`glassbox.toy.data.sparse_features` and
    :meth:`BatchedModel.loss_and_grad`, written without buffers so that the compiler fuses
    the element-wise work around the five matmuls into a few passes. Returns ``(loss,
    dW1, dW2 or None, db)``; ``W2`` is ``W1^T`` when ``tied``.
    """
    n_restarts, batch, n_features = keep.shape
    configs = probability.shape[0] // n_restarts
    present = keep[None] < probability.view(configs, n_restarts, 1, n_features)
    values = value * 2.0 - 1.0 if signed else value
    x = torch.where(present, values[None], 0.0).view(-1, batch, n_features)
    pre = torch.bmm(x, W1.mT)
    h = torch.relu(pre) if hidden_relu else pre
    out = torch.bmm(h, W2.mT) + b[:, None, :]
    if output_relu:
        out = torch.relu(out)
    diff = out - (x.abs() if abs_target else x)
    g = diff * scale
    loss = (diff * g).sum(dim=(1, 2)) * 0.5
    if output_relu:
        g = torch.where(out > 0, g, 0.0)
    gh = torch.bmm(g, W2)
    if hidden_relu:
        gh = torch.where(h > 0, gh, 0.0)
    gW1 = torch.bmm(gh.mT, x)
    if tied:
        return loss, gW1 + torch.bmm(h.mT, g), None, g.sum(dim=1)
    return loss, gW1, torch.bmm(g.mT, h), g.sum(dim=1)


def have_compiler() -> bool:
    """Whether ``torch.compile`` can build CPU kernels here (it needs a C++ compiler)."""
    return any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))


#: Compiled variants allowed per function: one per model kind and per size that torch
#: specialises (a dimension of 1), which exceeds torch's default of 8 in one process.
RECOMPILE_LIMIT = 64


@functools.cache
def compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` under ``torch.compile`` with symbolic sizes, built once per process."""
    import torch._dynamo

    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)
    config.accumulated_recompile_limit = max(
        config.accumulated_recompile_limit, 4 * RECOMPILE_LIMIT
    )
    return torch.compile(fn, dynamic=True, fullgraph=True)


class FusedModel(BatchedModel):
    """:class:`BatchedModel` whose sampling, loss and gradient run as one compiled program.

    Every element-wise operation is the same per element whatever its position, and every
    reduction runs over one instance's own data in a fixed order, so an instance still
    trains bit for bit the same in any batch (tested). The bits differ from the eager
    path's: the compiler sums the bias gradient in another order.
    """

    def sample_loss_and_grad(
        self, keep: torch.Tensor, value: torch.Tensor, probability: torch.Tensor
    ) -> torch.Tensor:
        """Per-instance loss of the batch drawn from uniforms ``keep, value``; gradients into ``.grad``."""
        kind, p = self.kind, self.params
        loss, gW1, gW2, gb = compiled(_fused_loss_and_grad)(
            keep,
            value,
            probability,
            p["W1"].detach(),
            w2_of(kind, p).detach(),
            p["b"].detach(),
            self.grad_scale,
            kind.hidden_relu,
            kind.output_relu,
            kind.tied,
            kind.target == "abs",
            kind.signed_inputs,
        )
        p["W1"].grad = gW1
        if gW2 is not None:
            p["W2"].grad = gW2
        p["b"].grad = gb
        return loss
