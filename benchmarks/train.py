"""Training speed: glassbox's batched trainer against a plain notebook-style loop.

The reference loop below is written the way the paper's companion notebook writes it:
a fresh sparse batch each step from ``torch.rand``, einsum forward passes, autograd,
``torch.optim.AdamW``. Both train the same instances from the same kind of init, at
the same thread count, and are timed in alternating blocks within one process so that
a busy machine slows both alike; the figure that matters is the ratio.

Then both train the whole abs(x) sweep to the end and are scored on one shared
evaluation set: equal final loss, and the wall time each needs to get within 5% and 2%
of its final training loss.

    python benchmarks/train.py                 # everything (several minutes)
    python benchmarks/train.py --quick         # smoke run: few blocks, short runs
    python benchmarks/train.py --no-converge   # speed ratios only (a few minutes)

glassbox is timed with both kernels: ``eager`` (buffered, hand-written gradient) and
``compiled`` (the same step fused by ``torch.compile``). The GEMM section measures the
machine's single-thread fp32 matmul rate and the fraction of it a compiled step reaches.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from glassbox.toy.config import ToyConfig, default_config
from glassbox.toy.models import KINDS
from glassbox.toy.seeds import STREAM_EVAL, derive_seed
from glassbox.toy.train import evaluate, train

ABS_DENSITY = (1, 0.5, 0.3, 0.1, 0.05, 0.03, 0.01, 0.005, 0.003, 0.001)
CPUINFO = Path("/proc/cpuinfo")
INTRO_DENSITY = tuple(float(20.0**-t) for t in np.linspace(0, 1, 10))


@dataclass(frozen=True)
class Setting:
    name: str
    config: ToyConfig


SETTINGS = (
    Setting(
        "abs n=100 m=40, 10 instances",
        default_config("abs", sparsity=tuple(1.0 - p for p in ABS_DENSITY), eval_samples=32_768),
    ),
    Setting(
        "ReLU output n=5 m=2, 10 instances",
        default_config("relu-output", sparsity=tuple(1.0 - p for p in INTRO_DENSITY)),
    ),
)


def reference_train(config: ToyConfig, steps: int, seed: int) -> tuple[float, dict, list[float]]:
    """The notebook-style loop; returns (loop seconds, final weights, summed loss per step)."""
    torch.manual_seed(seed)
    n, m, batch = config.n_features, config.n_hidden, config.batch
    inst = config.n_configs
    p = torch.tensor(config.probability()[:, :1], dtype=torch.float32)  # (inst, 1)
    importance = torch.tensor(config.importance_vector(), dtype=torch.float32)
    std = math.sqrt(2.0 / (n + m))
    is_abs = config.model == "abs"
    W1 = torch.nn.Parameter(torch.randn(inst, m, n) * std)
    W2 = torch.nn.Parameter(torch.randn(inst, n, m) * std) if is_abs else None
    b = torch.nn.Parameter(torch.zeros(inst, n))
    params = [W1, b] if W2 is None else [W1, W2, b]
    opt = torch.optim.AdamW(params, lr=config.lr)
    losses = []
    start = time.perf_counter()
    for _ in range(steps):
        feat = torch.rand(batch, inst, n)
        if is_abs:
            feat = feat * 2 - 1
        x = torch.where(torch.rand(batch, inst, n) <= p, feat, torch.zeros(()))
        if is_abs:
            h = torch.relu(torch.einsum("bin,imn->bim", x, W1))
            out = torch.relu(torch.einsum("bim,inm->bin", h, W2) + b)
            target = x.abs()
        else:
            h = torch.einsum("bin,imn->bim", x, W1)
            out = torch.relu(torch.einsum("bim,imn->bin", h, W1) + b)
            target = x
        loss = (importance * (target - out) ** 2).mean(dim=(0, 2)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    weights = {"W1": W1.detach(), "b": b.detach()}
    if W2 is not None:
        weights["W2"] = W2.detach()
    return seconds, weights, losses


def shared_eval(config: ToyConfig, weights: dict) -> np.ndarray:
    """Per-instance loss of ``weights`` on one fixed evaluation set (same for both trainers)."""
    probability = torch.tensor(config.probability(), dtype=torch.float32)
    importance = torch.tensor(config.importance_vector(), dtype=torch.float32)
    gen = torch.Generator().manual_seed(derive_seed(12345, STREAM_EVAL))
    params = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in weights.items()}
    return evaluate(
        KINDS[config.model], params, probability, importance, gen, 1, config.eval_samples, 1024
    )


def speed(setting: Setting, blocks: int, block_steps: int, threads: int) -> float:
    """Alternate reference and glassbox blocks (eager and compiled kernels); print steps/s and ratios.

    Returns the compiled kernel's median steps/s.
    """
    config = ToyConfig(**{**setting.config.__dict__, "steps": block_steps, "eval_samples": 1024})
    rates: dict[str, list[float]] = {"reference": [], "eager": [], "compiled": []}
    for block in range(blocks + 1):
        seconds, _, _ = reference_train(config, block_steps, seed=block)
        block_rates = {"reference": block_steps / seconds}
        for kernel in ("eager", "compiled"):
            run = train(
                ToyConfig(**{**config.__dict__, "seed": block, "kernel": kernel}),
                progress=False,
                threads=threads,
            )
            assert run.metrics["kernel"] == kernel
            block_rates[kernel] = run.metrics["steps_per_second"]
        if block == 0:
            continue  # warm-up: first-touch allocations, lazy initialisation, compilation
        for name, rate in block_rates.items():
            rates[name].append(rate)
    print(
        f"\n## speed: {setting.name}, batch {config.batch}, {blocks} blocks of {block_steps} steps"
    )
    labels = {
        "reference": "reference (einsum, autograd, AdamW)",
        "eager": "glassbox eager (bmm, hand gradient)",
        "compiled": "glassbox compiled (torch.compile)",
    }
    for name, values in rates.items():
        print(f"{labels[name]:<38} {statistics.median(values):8.1f} steps/s  "
              f"(blocks: {', '.join(f'{r:.0f}' for r in values)})")  # fmt: skip
    for name in ("eager", "compiled"):
        ratios = [g / r for g, r in zip(rates[name], rates["reference"], strict=True)]
        print(f"ratio {name} / reference: median {statistics.median(ratios):.2f}x "
              f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x)")  # fmt: skip
    return statistics.median(rates["compiled"])


def gemm_rate(shape: tuple[int, int, int], batch: int = 0, repeats: int = 30) -> float:
    """Best-of-blocks GFLOP/s of one fp32 (b)mm ``(M, K) @ (K, N)`` on the current threads."""
    m, k, n = shape
    gen = torch.Generator().manual_seed(0)
    lead = (batch,) if batch else ()
    a = torch.randn(*lead, m, k, generator=gen)
    b = torch.randn(*lead, k, n, generator=gen)
    out = torch.empty(*lead, m, n)
    op = torch.bmm if batch else torch.mm
    op(a, b, out=out)
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            op(a, b, out=out)
        best = max(best, repeats / (time.perf_counter() - start))
    return best * 2.0 * m * k * n * max(batch, 1) / 1e9


def gemm_fraction(setting: Setting, steps_per_second: float) -> None:
    """Print the machine's fp32 GEMM rate and the fraction of it one training step reaches."""
    c = setting.config
    inst, batch, n, m = c.n_configs * c.restarts, c.batch, c.n_features, c.n_hidden
    peak = max(gemm_rate((s, s, s)) for s in (512, 1024, 2048))
    # The step's five matmuls at their own shapes (forward x W1^T, h W2^T; backward g W2,
    # gh^T x, g^T h), as batched matmuls over the instances.
    shapes = [(batch, n, m), (batch, m, n), (batch, n, m), (m, batch, n), (n, batch, m)]
    at_shapes = [gemm_rate(s, batch=inst) for s in shapes]
    flops = 5 * 2.0 * inst * batch * n * m
    gemm_seconds = sum(
        2.0 * inst * a * b * d / (r * 1e9) for (a, b, d), r in zip(shapes, at_shapes, strict=True)
    )
    achieved = flops * steps_per_second / 1e9
    print(f"\n## GEMM: fp32, {torch.get_num_threads()} thread(s), best of 5 blocks")
    print(f"square mm (512, 1024, 2048; best):       {peak:6.1f} GFLOP/s")
    print(f"the step's five bmm shapes, alone:       {', '.join(f'{r:.1f}' for r in at_shapes)} GFLOP/s "
          f"({gemm_seconds * 1e3:.2f} ms a step)")  # fmt: skip
    print(f"compiled training step: {flops / 1e6:.0f} MFLOP of matmul at {steps_per_second:.1f} steps/s "
          f"= {achieved:.1f} GFLOP/s = {achieved / peak:.0%} of the square-mm rate, "
          f"{achieved / (flops / 1e9 / gemm_seconds):.0%} of the rate its own matmuls run at alone")  # fmt: skip


def converged_at(losses: np.ndarray, within: float) -> int:
    """First step after which the smoothed loss stays within ``within`` of its final value."""
    window = max(1, len(losses) // 100)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    final = smooth[-1]
    outside = np.flatnonzero(np.abs(smooth - final) > within * final)
    return int(outside[-1] + 1 + window) if len(outside) else window


def convergence(setting: Setting, steps: int, threads: int) -> None:
    """Train the whole sweep with both; compare final losses and time to converged loss."""
    config = ToyConfig(**{**setting.config.__dict__, "steps": steps})
    ref_seconds, ref_weights, ref_curve = reference_train(config, steps, seed=0)
    run = train(config, progress=False, threads=threads)
    gb_seconds = run.metrics["train_seconds"]
    # glassbox keeps per-step losses only as window means: rebuild a per-step series.
    gb_steps = np.array(run.metrics["loss_curve"]["step"])
    gb_windows = np.array(run.metrics["loss_curve"]["loss"]).sum(axis=1)
    gb_curve = np.repeat(gb_windows, np.diff(np.concatenate([[0], gb_steps])))
    ref_loss = shared_eval(config, ref_weights)
    gb_loss = shared_eval(config, run.weights)
    print(
        f"\n## whole sweep: {setting.name}, {steps} steps, shared evaluation set of {config.eval_samples}"
    )
    print("1-S       reference_loss  glassbox_loss")
    for p, r, g in zip(1.0 - np.array(config.sparsity), ref_loss, gb_loss, strict=True):
        print(f"{p:<9.4g} {r:<15.5g} {g:<.5g}")
    print(f"sum       {ref_loss.sum():<15.5g} {gb_loss.sum():<.5g}   "
          f"(glassbox / reference = {gb_loss.sum() / ref_loss.sum():.3f})")  # fmt: skip
    for name, seconds, curve in (
        ("reference", ref_seconds, np.array(ref_curve)),
        ("glassbox ", gb_seconds, gb_curve),
    ):
        per_step = seconds / steps
        marks = ", ".join(
            f"within {int(w * 100)}% at step {converged_at(curve, w)} ({converged_at(curve, w) * per_step:.1f} s)"
            for w in (0.05, 0.02)
        )
        print(
            f"{name}: {seconds:7.1f} s for {steps} steps ({steps / seconds:.1f} steps/s); {marks}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for both")
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--abs-block-steps", type=int, default=100)
    parser.add_argument("--intro-block-steps", type=int, default=1000)
    parser.add_argument("--converge-steps", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="2 blocks and 300-step sweeps")
    parser.add_argument("--no-converge", action="store_true", help="speed blocks only")
    args = parser.parse_args()
    if args.quick:
        args.blocks, args.abs_block_steps, args.intro_block_steps, args.converge_steps = (
            2,
            20,
            100,
            300,
        )
    torch.set_num_threads(args.threads)
    cpu = next(
        (line.split(":", 1)[1].strip() for line in CPUINFO.read_text().splitlines() if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    print(f"# glassbox training benchmark: torch {torch.__version__}, {os.cpu_count()} CPUs ({cpu}), "
          f"{args.threads} thread(s) for both, load average {os.getloadavg()[0]:.2f} at start")  # fmt: skip
    compiled_rate = speed(SETTINGS[0], args.blocks, args.abs_block_steps, args.threads)
    gemm_fraction(SETTINGS[0], compiled_rate)
    speed(SETTINGS[1], args.blocks, args.intro_block_steps, args.threads)
    if not args.no_converge:
        convergence(SETTINGS[0], args.converge_steps, args.threads)
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
