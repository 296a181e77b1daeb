"""Training: convergence, determinism, batched == alone, restarts, save/load."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from glassbox.errors import GlassboxError
from glassbox.toy.config import ToyConfig, default_config
from glassbox.toy.models import have_compiler
from glassbox.toy.run import load_run, save_run
from glassbox.toy.train import lr_factor, resolve_kernel, train
from glassbox.toy.trained import TrainedRun

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


def test_density_curriculum_runs_from_anneal_from_to_the_target() -> None:
    # Recorded from inside the loop: the probability the data used at each window's end.
    config = default_config(
        "abs", **{**SMALL, "steps": 200}, sparsity=(0.0, 0.99), anneal_from=0.3, anneal_steps=100
    )
    run = train(config, progress=False)
    steps = np.array(run.metrics["loss_curve"]["step"]) - 1  # 0-based step of each window end
    density = np.array(run.metrics["loss_curve"]["density"])  # (windows, instances)
    for i, target in enumerate((1.0, 0.01)):
        path = 0.3 * (target / 0.3) ** np.minimum(steps / 100, 1.0)
        assert np.allclose(density[:, i], path, rtol=1e-5), i
    # Dense rises, sparse falls, both from 0.3 at step 0, geometric in between.
    assert np.all(np.diff(density[:100, 0]) > 0) and np.all(np.diff(density[:100, 1]) < 0)


def test_density_curriculum_ends_exactly_at_the_target() -> None:
    import torch

    from glassbox.toy.train import annealed_probability

    target = torch.tensor([[0.01, 0.01], [1.0, 1.0]])
    for step in (100, 101, 5000):
        assert annealed_probability(target, 0.3, 100, step) is target
    before = annealed_probability(target, 0.3, 100, 99)
    assert before[0, 0].item() == pytest.approx(0.01 * 30 ** (1 / 100), rel=1e-6)
    assert before[0, 0].item() > 0.01 * 1.03
    assert annealed_probability(target, None, 0, 0) is target
    # And in a run: every window after anneal_steps used the target itself.
    config = default_config("abs", **SMALL, sparsity=(0.99,), anneal_from=0.3, anneal_steps=100)
    run = train(config, progress=False)
    steps = np.array(run.metrics["loss_curve"]["step"]) - 1
    density = np.array(run.metrics["loss_curve"]["density"])[:, 0]
    after = density[steps >= 100]
    assert len(after) > 10 and np.allclose(after, 0.01, rtol=1e-6, atol=0)


def monte_carlo_loss(run: TrainedRun, i: int, p: float, samples: int = 200_000) -> float:
    """The weighted MSE of instance ``i`` at feature probability ``p``, sampled with NumPy."""
    rng = np.random.default_rng(7)
    n = run.config.n_features
    x = rng.uniform(-1, 1, (samples, n)) * (rng.uniform(size=(samples, n)) < p)
    out = run.instance_net(i)(x)
    return float((run.config.importance_vector() * (out - np.abs(x)) ** 2).mean())


def test_final_loss_is_scored_at_the_instances_own_density() -> None:
    # A wrong evaluation density would also pick the wrong restart.
    config = default_config(
        "abs", **{**SMALL, "eval_samples": 65_536, "steps": 300}, sparsity=(0.9,), restarts=3
    )
    run = train(config, progress=False)
    final = run.metrics["final_loss"][0]
    assert final == pytest.approx(monte_carlo_loss(run, 0, 0.1), rel=0.05)
    assert abs(final - monte_carlo_loss(run, 0, 0.9)) > 0.5 * final


needs_compiler = pytest.mark.skipif(
    not have_compiler(), reason="the compiled kernel needs a C++ compiler for torch.compile"
)


@needs_compiler
@pytest.mark.parametrize("model", ["abs", "relu-output", "linear", "relu-hidden"])
def test_compiled_kernel_batched_equals_alone(model: str) -> None:
    base = default_config(model, **SMALL, kernel="compiled", restarts=2, seed=1)
    batched = train(ToyConfig(**{**base.__dict__, "sparsity": (0.0, 0.9, 0.99)}), progress=False)
    alone = train(ToyConfig(**{**base.__dict__, "sparsity": (0.9,)}), progress=False)
    assert batched.metrics["kernel"] == "compiled"
    for name in batched.weights:
        assert np.array_equal(batched.weights[name][1], alone.weights[name][0]), name
    assert batched.metrics["restart_final_loss"][1] == alone.metrics["restart_final_loss"][0]


@needs_compiler
def test_compiled_and_eager_kernels_train_the_same_model() -> None:
    base = default_config("abs", **SMALL, sparsity=(0.0, 0.9), anneal_from=0.3, anneal_steps=50)
    runs = {
        k: train(ToyConfig(**{**base.__dict__, "kernel": k}), progress=False)
        for k in ("compiled", "eager")
    }
    assert runs["compiled"].metrics["kernel"] == "compiled"
    assert runs["eager"].metrics["kernel"] == "eager"
    a, b = runs["compiled"].weights["W1"], runs["eager"].weights["W1"]
    assert not np.array_equal(a, b)  # different rounding ...
    assert np.allclose(a, b, atol=1e-4)  # ... of the same arithmetic
    assert runs["compiled"].metrics["final_loss"] == pytest.approx(
        runs["eager"].metrics["final_loss"], rel=1e-3
    )


@needs_compiler
def test_compiled_restart_r_does_not_depend_on_the_number_of_restarts() -> None:
    base = default_config("abs", **SMALL, sparsity=(0.0, 0.9), kernel="compiled")
    one = train(ToyConfig(**{**base.__dict__, "restarts": 1}), progress=False)
    three = train(ToyConfig(**{**base.__dict__, "restarts": 3}), progress=False)
    assert list(np.array(three.metrics["restart_final_loss"])[:, 0]) == one.metrics["final_loss"]


@pytest.mark.parametrize("kernel", ["eager", pytest.param("compiled", marks=needs_compiler)])
def test_per_configuration_learning_rates(kernel: str) -> None:
    base = default_config("abs", **SMALL, kernel=kernel)
    mixed = train(
        ToyConfig(**{**base.__dict__, "sparsity": (0.0, 0.9), "lr_per_config": (1e-2, 1e-3)}),
        progress=False,
    )
    for i, (s, lr) in enumerate(((0.0, 1e-2), (0.9, 1e-3))):
        alone = train(ToyConfig(**{**base.__dict__, "sparsity": (s,), "lr": lr}), progress=False)
        for name in alone.weights:
            assert np.array_equal(mixed.weights[name][i], alone.weights[name][0]), (i, name)
    other = train(ToyConfig(**{**base.__dict__, "sparsity": (0.0,), "lr": 1e-3}), progress=False)
    assert not np.array_equal(other.weights["W1"][0], mixed.weights["W1"][0])
    with pytest.raises(GlassboxError, match="one each"):
        ToyConfig(**{**base.__dict__, "sparsity": (0.0, 0.9), "lr_per_config": (1e-2,)})


@pytest.mark.cuda
@pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="needs a CUDA device (runs when present)"
)
@pytest.mark.parametrize("kernel", ["eager", "compiled"])
def test_cuda_training_matches_the_cpu(kernel: str) -> None:
    base = default_config("abs", **SMALL, sparsity=(0.0, 0.9), restarts=2, kernel=kernel)
    cuda = train(ToyConfig(**{**base.__dict__, "device": "cuda"}), progress=False)
    cpu = train(base, progress=False)
    assert cuda.metrics["device"].startswith("cuda")
    for name in cpu.weights:
        assert cuda.weights[name].dtype == np.float32
        assert np.allclose(cuda.weights[name], cpu.weights[name], atol=1e-3), name
    alone = train(
        ToyConfig(**{**base.__dict__, "device": "cuda", "sparsity": (0.9,)}), progress=False
    )
    assert np.allclose(alone.weights["W1"][0], cuda.weights["W1"][1], atol=1e-5)


def test_paper_recipe_sets_lr_by_density_and_the_curriculum() -> None:
    from glassbox.toy.config import PAPER_ABS_SPARSITY, paper_recipe, recipe_lr

    config = paper_recipe(default_config("abs", steps=8000))
    lrs = np.array(config.lr_per_config)
    assert lrs[0] == lrs[1] == 1e-2 and lrs[-1] == 1e-3  # 1 - S = 1, 0.3 ... 0.001
    assert np.all(np.diff(lrs[1:]) < 0)
    # Geometric between 0.3 and 0.001: log lr is linear in log density.
    density = 1.0 - np.array(PAPER_ABS_SPARSITY)
    inner = slice(1, None)
    slope = np.diff(np.log(lrs[inner])) / np.diff(np.log(density[inner]))
    assert np.allclose(slope, np.log(10) / np.log(300))
    assert recipe_lr(1e-5) == 1e-3 and recipe_lr(0.5) == 1e-2
    assert (config.anneal_from, config.anneal_steps) == (0.3, 4000)
    assert np.allclose(config.lr_vector(), lrs)


def test_kernel_choice() -> None:
    import torch

    cpu = torch.device("cpu")
    small = default_config("relu-output")
    big = default_config("abs")
    assert resolve_kernel(small, cpu) == "eager"  # auto: the compiled call costs more here
    assert resolve_kernel(ToyConfig(**{**big.__dict__, "kernel": "eager"}), cpu) == "eager"
    if have_compiler():
        assert resolve_kernel(big, cpu) == "compiled"
    else:
        with pytest.raises(GlassboxError, match="kernel 'compiled' needs"):
            resolve_kernel(ToyConfig(**{**big.__dict__, "kernel": "compiled"}), cpu)
    with pytest.raises(GlassboxError, match="unknown kernel"):
        ToyConfig(**{**big.__dict__, "kernel": "fast"})
