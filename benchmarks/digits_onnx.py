"""A torch-made digits MLP exported to ONNX in plain float32, extracted as a black box.

    pip install scikit-learn   # the 8x8 digits ship inside it (no download)
    python benchmarks/digits_onnx.py --seeds 0-2

Each seed trains a 64-32-10 ReLU MLP on scikit-learn's digits (float32, Adam, 300 epochs
of full batches), exports it with ``torch.onnx.export`` as it comes (float32 weights and
input, the example's fixed batch size of 1; the TorchScript exporter, which needs no
onnxscript), and attacks the ONNX file through ``OnnxOracle``. Verification is against
the file's own weights. Prints one line per seed and the machine.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from extract import parse_seeds
from glassbox.extract import ExtractConfig, extract
from glassbox.mlp import ReLUNet
from glassbox.oracle.onnx_model import OnnxOracle
from glassbox.verify.compare import verify


def train_digits_mlp(seed: int, path: Path) -> float:
    """Train the MLP and write its ONNX export to ``path``; returns test accuracy."""
    import torch
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    train, test = order[:1400], order[1400:]
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(X[train]), torch.from_numpy(y[train])
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    with torch.no_grad():
        acc = float((model(torch.from_numpy(X[test])).argmax(1).numpy() == y[test]).mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 64), str(path), dynamo=False)
    return acc


def main() -> None:
    """Train, export, attack and verify each seed."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", default="0-2")
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for seed in parse_seeds(args.seeds):
            path = Path(tmp) / f"digits{seed}.onnx"
            acc = train_digits_mlp(seed, path)
            truth = ReLUNet.from_onnx(path, allow_float32=True)
            t = time.perf_counter()
            result = extract(OnnxOracle(path, allow_float32=True), ExtractConfig(seed=seed))
            seconds = time.perf_counter() - t
            line = (
                f"seed {seed}: test accuracy {acc:.3f}; {result.message[:90]}; "
                f"queries 2^{math.log2(result.queries):.2f}, {seconds:.0f} s"
            )
            if result.net is not None and result.net.dims == truth.dims:
                X = np.random.default_rng(0).uniform(0, 1, size=(2048, 64))
                scale = float(np.max(np.abs(truth.forward(X))))
                v = verify(result.net, truth, n_samples=4096, seed=seed)
                line += (
                    f"; weight error 2^{v.max_weight_error_log2:.1f}, functional error "
                    f"2^{v.epsilon_log2:.1f} (relative 2^{v.epsilon_log2 - math.log2(scale):.1f})"
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
