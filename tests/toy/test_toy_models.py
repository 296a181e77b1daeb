"""Model definitions, the loss, and the hand-written gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glassbox.toy.models import (
    KINDS,
    BatchedModel,
    forward,
    init_params,
    target_of,
    weighted_mse,
)


def test_loss_equals_hand_computation() -> None:
    out = torch.tensor([[[0.5, 0.0], [1.0, 2.0]]])  # one instance, batch 2, 2 features
    target = torch.tensor([[[1.0, 1.0], [1.0, 0.0]]])
    importance = torch.tensor([1.0, 0.5])
    # mean over 4 terms of I * err^2: (1 * 0.25 + 0.5 * 1 + 1 * 0 + 0.5 * 4) / 4
    expected = (0.25 + 0.5 + 0.0 + 2.0) / 4
    assert weighted_mse(out, target, importance).item() == pytest.approx(expected)


def abs_pair_params(n: int) -> dict[str, torch.Tensor]:
    eye = torch.eye(n, dtype=torch.float64)
    return {
        "W1": torch.cat([eye, -eye])[None],  # (1, 2n, n): ReLU(x_i) and ReLU(-x_i)
        "W2": torch.cat([eye, eye], dim=1)[None],  # (1, n, 2n): summed at output i
        "b": torch.zeros(1, n, dtype=torch.float64),
    }


def test_hand_set_pair_model_computes_abs_exactly() -> None:
    kind = KINDS["abs"]
    params = abs_pair_params(5)
    x = torch.rand(1, 256, 5, dtype=torch.float64) * 2 - 1
    x[x.abs() < 0.3] = 0.0  # sparse, with exact zeros
    out = forward(kind, params, x)
    assert torch.equal(out, x.abs())
    assert weighted_mse(out, target_of(kind, x), torch.ones(5, dtype=torch.float64)).item() == 0.0
    loss = BatchedModel(kind, params, torch.ones(5, dtype=torch.float64), 256).loss_and_grad(
        x, x.abs()
    )
    assert loss.item() == 0.0


def test_tied_models_match_their_formulas() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 8, 5, generator=gen)
    for name in ("linear", "relu-output", "relu-hidden"):
        params = init_params(KINDS[name], 2, 5, 3, gen)
        params["b"] = torch.randn(2, 5, generator=gen)
        W, b = params["W1"], params["b"]
        h = x @ W.mT
        if name == "relu-hidden":
            h = h.relu()
        want = h @ W + b[:, None]
        if name != "linear":
            want = want.relu()
        assert torch.allclose(forward(KINDS[name], params, x), want)


@pytest.mark.parametrize("name", list(KINDS))
def test_hand_gradient_equals_autograd(name: str) -> None:
    kind = KINDS[name]
    gen = torch.Generator().manual_seed(3)
    params = {k: v.double() for k, v in init_params(kind, 3, 7, 4, gen).items()}
    params["b"] = torch.randn(3, 7, generator=gen, dtype=torch.float64) * 0.3
    importance = torch.rand(7, generator=gen, dtype=torch.float64)
    x = torch.rand(3, 16, 7, generator=gen, dtype=torch.float64) * 2 - 1
    target = target_of(kind, x)
    model = BatchedModel(kind, params, importance, 16)
    loss = model.loss_and_grad(x, target)
    ref_params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    ref = weighted_mse(forward(kind, ref_params, x), target, importance)
    ref.sum().backward()
    assert torch.allclose(loss, ref, rtol=1e-12, atol=0)
    for k, p in ref_params.items():
        assert p.grad is not None and model.params[k].grad is not None
        assert torch.allclose(model.params[k].grad, p.grad, rtol=1e-10, atol=1e-14), k
    # The ReLUs are really clipping here, or the test would not check their masks.
    assert (forward(kind, params, x) == 0).any() or not kind.output_relu


def test_init_scale() -> None:
    params = init_params(KINDS["abs"], 3, 100, 40, torch.Generator().manual_seed(1), init_scale=0.5)
    for name in ("W1", "W2"):
        assert float(params[name].std()) == pytest.approx(0.5 * np.sqrt(2 / 140), rel=0.05)
    assert params["W2"].shape == (3, 100, 40) and not params["b"].any()
