"""Training: convergence, determinism, batched == alone, restarts, save/load."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from glassbox.errors import GlassboxError
from glassbox.toy.config import ToyConfig, default_config
from glassbox.toy.run import TrainedRun, load_run, save_run
from glassbox.toy.train import lr_factor, train

SMALL = dict(n_features=6, n_hidden=4, steps=150, batch=64, eval_samples=512)


def test_small_dense_abs_trains_to_near_zero_loss() -> None:
    # n = 3, m = 6 has room for a ReLU(x), ReLU(-x) pair per feature: the loss can reach 0.
    config = default_config(
        "abs", n_features=3, n_hidden=6, sparsity=(0.0,), steps=2000, lr=1e-2, importance=1.0
    )
    run = train(config, progress=False)
    baseline = 1 / 3  # E[x^2] for U[-1, 1]: the loss of outputting zero
    assert run.metrics["final_loss"][0] < 1e-3 * baseline
    assert run.summary(0)["features"]["pair"] + run.summary(0)["features"]["redundant"] == 3


def test_batched_instance_equals_the_same_config_alone() -> None:
    base = default_config("abs", **SMALL, restarts=2, seed=5)
    batched = train(
        base.__class__(**{**base.__dict__, "sparsity": (0.0, 0.9, 0.99)}), progress=False
    )
    alone = train(base.__class__(**{**base.__dict__, "sparsity": (0.9,)}), progress=False)
    for name in batched.weights:
        assert np.array_equal(batched.weights[name][1], alone.weights[name][0]), name
    assert batched.metrics["final_loss"][1] == alone.metrics["final_loss"][0]
    assert batched.metrics["restart_final_loss"][1] == alone.metrics["restart_final_loss"][0]


def test_density_curriculum_keeps_batched_equal_to_alone() -> None:
    base = default_config("abs", **SMALL, anneal_from=0.3, anneal_steps=100)
    batched = train(ToyConfig(**{**base.__dict__, "sparsity": (0.0, 0.99)}), progress=False)
    alone = train(ToyConfig(**{**base.__dict__, "sparsity": (0.99,)}), progress=False)
    plain = train(
        ToyConfig(**{**base.__dict__, "sparsity": (0.99,), "anneal_from": None}), progress=False
    )
    assert np.array_equal(batched.weights["W1"][1], alone.weights["W1"][0])
    assert not np.array_equal(alone.weights["W1"][0], plain.weights["W1"][0])


@pytest.mark.parametrize("model", ["relu-output", "linear", "relu-hidden"])
def test_other_kinds_batched_equals_alone(model: str) -> None:
    a = train(default_config(model, **SMALL, sparsity=(0.0, 0.8)), progress=False)
    b = train(default_config(model, **SMALL, sparsity=(0.8,)), progress=False)
    assert np.array_equal(a.weights["W1"][1], b.weights["W1"][0])


def test_deterministic_for_a_seed_and_seed_matters() -> None:
    config = default_config("abs", **SMALL, sparsity=(0.5,))
    a, b = train(config, progress=False), train(config, progress=False)
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    c = train(ToyConfig(**{**config.__dict__, "seed": 1}), progress=False)
    assert not np.array_equal(a.weights["W1"], c.weights["W1"])


def test_restarts_keep_the_lowest_loss() -> None:
    run = train(default_config("abs", **SMALL, sparsity=(0.0, 0.9), restarts=3), progress=False)
    table = np.array(run.metrics["restart_final_loss"])
    assert table.shape == (2, 3)
    assert np.allclose(run.metrics["final_loss"], table.min(axis=1))
    assert list(run.metrics["kept_restart"]) == list(table.argmin(axis=1))
    assert len(np.unique(table[0])) == 3  # restarts really differ
    assert run.weights["W1"].shape == (2, 4, 6)


def test_restart_r_does_not_depend_on_the_number_of_restarts() -> None:
    one = train(default_config("abs", **SMALL, sparsity=(0.0, 0.9), restarts=1), progress=False)
    three = train(default_config("abs", **SMALL, sparsity=(0.0, 0.9), restarts=3), progress=False)
    table = np.array(three.metrics["restart_final_loss"])
    assert list(table[:, 0]) == one.metrics["final_loss"]
    # So more restarts can only lower the kept loss.
    assert np.all(np.array(three.metrics["final_loss"]) <= one.metrics["final_loss"])


def test_loss_curve_falls() -> None:
    run = train(
        default_config("relu-output", steps=400, batch=128, eval_samples=1024), progress=False
    )
    curve = np.array(run.metrics["loss_curve"]["loss"])
    assert curve.shape == (200, 3)
    total = curve.sum(axis=1)
    assert total[-20:].mean() < 0.6 * total[:10].mean()
    assert run.metrics["loss_curve"]["step"][-1] == 400


def test_lr_schedules() -> None:
    assert lr_factor(0, 100, "constant") == 1.0
    assert lr_factor(0, 100, "linear") == 1.0 and lr_factor(50, 100, "linear") == 0.5
    assert lr_factor(50, 100, "cosine") == pytest.approx(0.5)
    assert lr_factor(0, 100, "cosine", warmup=10) == pytest.approx(0.1)
    assert lr_factor(10, 100, "cosine", warmup=10) == 1.0
    assert math.isclose(lr_factor(99, 100, "cosine"), 0.5 * (1 + math.cos(math.pi * 0.99)))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"sparsity": (1.0,)}, "outside"),
        ({"sparsity": (-0.5,)}, "outside"),
        ({"n_hidden": 13}, "more than allowed"),
        ({"model": "quadratic"}, "unknown model kind"),
        ({"steps": 0}, "steps"),
        ({"lr": -1.0}, "lr"),
        ({"schedule": "step"}, "schedule"),
        ({"anneal_from": 0.0, "anneal_steps": 10}, "anneal_from"),
        ({"anneal_from": 0.5, "anneal_steps": 0}, "anneal_steps"),
    ],
)
def test_config_rejects_bad_values(changes: dict, message: str) -> None:
    with pytest.raises(GlassboxError, match=message):
        ToyConfig(**{**default_config("abs", **SMALL).__dict__, **changes})


def trained_small() -> TrainedRun:
    return train(default_config("abs", **SMALL, sparsity=(0.0, 0.9)), progress=False)


def test_save_load_is_bit_exact(tmp_path: Path) -> None:
    run = trained_small()
    save_run(run, tmp_path / "run", plots=False)
    back = load_run(tmp_path / "run")
    assert back.config == run.config
    for name, w in run.weights.items():
        assert back.weights[name].dtype == np.float32
        assert np.array_equal(back.weights[name], w)
    assert back.metrics["final_loss"] == run.metrics["final_loss"]
    x = np.random.default_rng(0).uniform(-1, 1, (50, 6))
    assert np.array_equal(back.instance_net(1)(x), run.instance_net(1)(x))


def test_instance_net_is_the_trained_function() -> None:
    import torch

    from glassbox.toy.models import forward

    run = trained_small()
    net = run.instance_net(1)
    assert net.dims == (6, 4, 6) and net.output_relu and net.biases[0] is None
    x = np.random.default_rng(1).uniform(-1, 1, (20, 6))
    params = {k: torch.tensor(v[1:2], dtype=torch.float64) for k, v in run.weights.items()}
    want = forward(run.config.kind, params, torch.tensor(x)[None])[0].numpy()
    assert np.allclose(net(x), want, atol=1e-12)


def test_relu_output_instance_net_collapses_to_one_layer() -> None:
    run = train(default_config("relu-output", steps=20, eval_samples=64, batch=32), progress=False)
    net = run.instance_net(0)
    w = run.weights["W1"][0].astype(np.float64)
    assert net.dims == (5, 5) and net.output_relu
    assert np.allclose(net.weights[0], w.T @ w)


def test_save_refuses_existing_dir_and_overwrites_on_request(tmp_path: Path) -> None:
    run = trained_small()
    target = tmp_path / "run"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    with pytest.raises(GlassboxError, match="already exists"):
        save_run(run, target, plots=False)
    with pytest.raises(GlassboxError, match="not a glassbox run"):
        save_run(run, target, plots=False, overwrite=True)
    assert (target / "precious.txt").read_text() == "keep me"
    save_run(run, tmp_path / "run2", plots=False)
    save_run(run, tmp_path / "run2", plots=False, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run2"]  # no temp leftovers


def test_load_rejects_broken_runs(tmp_path: Path) -> None:
    run = trained_small()
    save_run(run, tmp_path / "run", plots=False)
    with pytest.raises(GlassboxError, match="not a glassbox toy run"):
        load_run(tmp_path)
    weights = tmp_path / "run" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(GlassboxError, match="not a readable safetensors"):
        load_run(tmp_path / "run")


def test_adamw_matches_torch() -> None:
    import torch

    from glassbox.toy.train import AdamW

    gen = torch.Generator().manual_seed(0)
    mine = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    ref = mine.clone().requires_grad_(True)
    opt_ref = torch.optim.AdamW([ref], lr=1e-2, weight_decay=0.1)
    opt = AdamW([mine], lr=1e-2, weight_decay=0.1)
    for _ in range(20):
        grad = torch.randn(3, 5, generator=gen, dtype=torch.float64)
        mine.grad, ref.grad = grad.clone(), grad.clone()
        opt.step()
        opt_ref.step()
    assert torch.allclose(mine, ref.detach(), rtol=1e-12, atol=1e-14)
    assert not torch.allclose(mine, torch.zeros(3, 5, dtype=torch.float64))
