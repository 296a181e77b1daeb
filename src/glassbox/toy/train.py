"""Training: every instance of a ToyConfig in one batched loop, restarts included.

Instance ``c * restarts + r`` trains configuration ``c`` (a sparsity value) from restart
``r``. Restarts differ in their initial weights and data; configurations that share a
restart share both and differ only in their sparsity. After training, every instance is
scored on the same fixed evaluation set and the lowest-loss restart of each
configuration is kept, as the paper kept the best of many models.
"""

from __future__ import annotations

import math
import sys
import time
import warnings

import numpy as np
import torch
from tqdm import tqdm

from glassbox.errors import GlassboxError
from glassbox.toy.analysis import constant_baseline
from glassbox.toy.config import ToyConfig
from glassbox.toy.data import draw_uniforms, sparse_features
from glassbox.toy.models import (
    BatchedModel,
    FusedModel,
    Kind,
    forward,
    have_compiler,
    target_of,
    weighted_mse,
)
from glassbox.toy.optim import AdamW, FusedAdamW, lr_factor
from glassbox.toy.seeds import STREAM_DATA, STREAM_EVAL, derive_seed, initial_params
from glassbox.toy.trained import TrainedRun

CURVE_POINTS = 200
# Multiply-adds per matmul per step below which one CPU thread beats several.
SMALL_WORK = 4_000_000
# Threads of a big model's run: fixed, so that its bits never depend on the machine it ran on.
BIG_THREADS = 2
# Multiply-adds per matmul per step from which the compiled kernel pays ("auto").
COMPILE_WORK = 1_000_000


def annealed_probability(
    probability: torch.Tensor, anneal_from: float | None, anneal_steps: int, step: int
) -> torch.Tensor:
    """The feature probability the data uses at ``step`` (0-based) under the density curriculum.

    It starts at ``anneal_from`` for every instance and moves geometrically to each
    instance's own ``probability``, which it reaches exactly at ``step = anneal_steps``
    and keeps from then on (the tensor itself is returned, not a rounded copy).
    """
    if anneal_from is None or step >= anneal_steps:
        return probability
    log_target = probability.log()
    log_start = torch.full_like(log_target, math.log(anneal_from))
    return torch.exp(torch.lerp(log_start, log_target, step / anneal_steps))


def resolve_kernel(config: ToyConfig, device: torch.device) -> str:
    """The kernel a run uses: ``compiled`` where torch.compile can build it here, else ``eager``.

    ``auto`` compiles when one step's matmuls are at least :data:`COMPILE_WORK` multiply-adds
    each: below that the compiled call's fixed cost outweighs the fused passes (measured:
    the 5 -> 2 ReLU output model ran 1.7x the reference compiled, 2.7x eager).
    """
    name = config.kernel
    n_instances = config.n_configs * config.restarts
    work = n_instances * config.batch * config.n_features * config.n_hidden
    if name == "eager" or (name == "auto" and work < COMPILE_WORK):
        return "eager"
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        usable = has_triton()
    else:
        usable = have_compiler()
    if not usable:
        if name == "compiled":
            raise GlassboxError(
                "kernel 'compiled' needs torch.compile to build kernels here (a C++ compiler "
                "such as g++ on a CPU, triton on CUDA); install one or use --kernel eager"
            )
        warnings.warn(
            "no compiler for torch.compile here; training with the eager kernel", stacklevel=3
        )
        return "eager"
    return "compiled"


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name``; asking for CUDA without one is a user error."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GlassboxError(
            f"device {name!r} asked for, but this torch has no CUDA device; use --device cpu"
        )
    return torch.device(name)


def instance_probability(config: ToyConfig, device: torch.device) -> torch.Tensor:
    """Feature probability ``(configs * restarts, n)``, each configuration repeated per restart."""
    p = torch.tensor(config.probability(), dtype=torch.float32, device=device)
    return p.repeat_interleave(config.restarts, dim=0)


@torch.no_grad()
def evaluate(
    kind: Kind,
    params: dict[str, torch.Tensor],
    probability: torch.Tensor,
    importance: torch.Tensor,
    generator: torch.Generator,
    n_restarts: int,
    samples: int,
    chunk: int,
) -> np.ndarray:
    """Per-instance loss on ``samples`` fresh inputs from ``generator``, in chunks, as float64.

    Every restart sees the same inputs, so their losses compare fairly.
    """
    n_features = probability.shape[1]
    total = np.zeros(probability.shape[0])
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        keep, value = draw_uniforms([generator], size, n_features)
        shape = (n_restarts, size, n_features)
        x = sparse_features(
            keep.expand(shape), value.expand(shape), probability, kind.signed_inputs
        )
        loss = weighted_mse(forward(kind, params, x), target_of(kind, x), importance)
        total += loss.double().cpu().numpy() * size
    return total / samples


def default_threads(config: ToyConfig) -> int:
    """CPU threads for a run: a pure function of the config, never of the machine's load.

    Small models gain nothing from a thread pool, and on oversubscribed cores torch's
    spinning worker threads slow a run down several times (measured: 10x at load 6 on
    2 cores): one thread below :data:`SMALL_WORK`, else :data:`BIG_THREADS` (a constant,
    not the core count, so that a config gives the same bits on every machine and load).
    """
    work = config.n_configs * config.restarts * config.batch * config.n_features * config.n_hidden
    return 1 if work < SMALL_WORK else BIG_THREADS


def train(config: ToyConfig, progress: bool = True, threads: int | None = None) -> TrainedRun:
    """Train every instance of ``config`` and keep the best restart of each configuration.

    ``threads`` sets torch's CPU threads for the run (restored afterwards); by default
    :func:`default_threads`.
    """
    previous = torch.get_num_threads()
    threads = threads or default_threads(config)
    torch.set_num_threads(threads)
    try:
        run = _train(config, progress)
    finally:
        torch.set_num_threads(previous)
    run.metrics["threads"] = threads
    return run


def _train(config: ToyConfig, progress: bool) -> TrainedRun:
    device = resolve_device(config.device)
    kind = config.kind
    n_restarts, n_configs = config.restarts, config.n_configs
    n_instances = n_configs * n_restarts

    def generator(stream: int, restart: int, on: torch.device) -> torch.Generator:
        return torch.Generator(on).manual_seed(derive_seed(config.seed, stream, restart))

    # Each restart has its own streams, so restart r is the same in any run that has it.
    data_gens = [generator(STREAM_DATA, r, device) for r in range(n_restarts)]
    eval_gen = generator(STREAM_EVAL, 0, device)

    # One initial model per restart (drawn on the CPU, so CUDA runs start the same),
    # shared by every configuration: instances tile as (r0, r1, r0, r1, ...).
    inits = [initial_params(config, r) for r in range(n_restarts)]
    start = {}
    for name in inits[0]:
        stacked = torch.cat([p[name] for p in inits])
        start[name] = stacked.repeat(n_configs, *([1] * (stacked.ndim - 1))).to(device)
    importance = torch.tensor(config.importance_vector(), dtype=torch.float32, device=device)
    probability = instance_probability(config, device)
    windows = np.array_split(np.arange(config.steps), min(CURVE_POINTS, config.steps))
    window_ends = {int(w[-1]): k for k, w in enumerate(windows)}
    # The density the data really used at the end of each curve window, per instance.
    density_curve = torch.empty(len(windows), n_instances, device=device)

    kernel = resolve_kernel(config, device)
    fused = kernel == "compiled"
    model = (FusedModel if fused else BatchedModel)(kind, start, importance, config.batch)
    params = list(model.params.values())
    peak_lr = np.repeat(config.lr_vector(), n_restarts)  # per instance
    uniform_lr = bool(np.all(peak_lr == peak_lr[0]))
    optimizer = (FusedAdamW if fused else AdamW)(
        params, lr=config.lr, weight_decay=config.weight_decay
    )
    uniforms_shape = (n_restarts, config.batch, config.n_features)
    uniforms = (
        torch.empty(uniforms_shape, device=device),
        torch.empty(uniforms_shape, device=device),
    )
    losses = torch.empty(config.steps, n_instances, device=device)

    bar = tqdm(
        total=config.steps,
        disable=not progress,
        file=sys.stderr,
        desc=f"train {config.model} x{n_instances}",
        mininterval=0.5,
        unit="step",
    )
    t0 = time.perf_counter()
    for step in range(config.steps):
        factor = lr_factor(step, config.steps, config.schedule, config.warmup)
        optimizer.lr = float(peak_lr[0]) * factor if uniform_lr else peak_lr * factor
        keep, value = draw_uniforms(data_gens, config.batch, config.n_features, out=uniforms)
        sampled = annealed_probability(probability, config.anneal_from, config.anneal_steps, step)
        if step in window_ends:
            density_curve[window_ends[step]] = sampled.mean(dim=1)
        losses[step] = model.sample_loss_and_grad(keep, value, sampled)
        optimizer.step()
        bar.update(1)
        if step == 0:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            first_step = time.perf_counter() - t0  # includes compiling the compiled kernel
        if progress and (step % 200 == 0 or step == config.steps - 1):
            bar.set_postfix(lowest_loss=f"{losses[step].min().item():.4g}", refresh=False)
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_seconds = time.perf_counter() - t0

    trained = {k: v.detach() for k, v in model.params.items()}
    final = evaluate(
        kind,
        trained,
        probability,
        importance,
        eval_gen,
        n_restarts,
        config.eval_samples,
        config.batch,
    )
    if not np.all(np.isfinite(final)):
        raise GlassboxError("training diverged (non-finite loss); lower --lr")
    by_config = final.reshape(n_configs, n_restarts)
    kept_restart = by_config.argmin(axis=1)
    kept = np.arange(n_configs) * n_restarts + kept_restart

    curve = losses[:, kept].double().cpu().numpy()
    metrics = {
        "final_loss": final[kept].tolist(),
        "baseline_loss": constant_baseline(
            config.probability(), config.importance_vector()
        ).tolist(),
        "restart_final_loss": by_config.tolist(),
        "kept_restart": kept_restart.tolist(),
        "loss_curve": {
            "step": [int(w[-1]) + 1 for w in windows],
            "loss": [curve[w].mean(axis=0).tolist() for w in windows],
            "density": density_curve[:, kept].double().cpu().numpy().tolist(),
        },
        "train_seconds": train_seconds,
        "first_step_seconds": first_step,
        # The rate after the first step, so that compiling is not counted as training.
        "steps_per_second": (config.steps - 1) / (train_seconds - first_step)
        if config.steps > 1
        else 1.0 / train_seconds,
        "device": str(device),
        "kernel": kernel,
        "torch": torch.__version__,
    }
    weights = {k: v[kept].cpu().numpy().copy() for k, v in trained.items()}
    return TrainedRun(config, weights, metrics)
