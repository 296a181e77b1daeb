"""Classifiers as deployed, attacked through ``glassbox extract``: probabilities, several outputs.

    python benchmarks/classifiers.py --rows skl32,skl64,torch5,sigmoid,regressor

Rows (issue 25):

- ``skl32``: scikit-learn ``MLPClassifier(hidden_layer_sizes=(64, 32))`` on digits, exported
  by skl2onnx as it comes (float32, two outputs: the label and a ZipMap of probabilities),
  random states 0-2;
- ``skl64``: the same exported in float64 (``zipmap: False``: a (batch, 10) probabilities output);
- ``torch5``: torch 20-32-16-5 ending in ``Softmax``, trained on ``make_classification``,
  float64 ONNX, seeds 0-4;
- ``sigmoid``: torch 30-20-1 ending in ``Sigmoid`` on breast cancer (standardised), float64 ONNX;
- ``regressor``: scikit-learn ``MLPRegressor((24, 12))`` on digits, float64 (raw scores).

Each file is attacked by the command a user types, ``glassbox extract FILE --out DIR``;
the verification comes from its extraction.json, and for classifiers the recovered net
(with its head) is also held against the truth on the data's own inputs (same class on
every one?). When a classifier's attack fails, a control attacks the truth's logit
differences asked directly (no softmax; rounded to float32 for a float32 file): if that
fails too, the failure is the attack's on this net, not the classifier's. Prints one line per run, then the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from extract import parse_seeds
from glassbox.cli import main as glassbox
from glassbox.extract import ExtractConfig, extract
from glassbox.io import read_json
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import float32_outputs, net_oracle
from glassbox.oracle.onnx_model import OnnxOracle, computes_in_float32
from glassbox.verify.classifier import logit_differences, verify_classifier
from glassbox.verify.compare import fmt_log2


def sklearn_digits(path: Path, seed: int, float32: bool, regressor: bool = False) -> np.ndarray:
    """Fit on digits, export with skl2onnx to ``path``; returns the data's inputs."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if regressor:
            model = MLPRegressor(hidden_layer_sizes=(24, 12), max_iter=500, random_state=seed).fit(
                X, y
            )
            onx = to_onnx(model, X[:1].astype(np.float64))
        else:
            model = MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=500, random_state=seed).fit(
                X, y
            )
            dtype = np.float32 if float32 else np.float64
            options = None if float32 else {id(model): {"zipmap": False}}
            onx = to_onnx(model, X[:1].astype(dtype), options=options)
    path.write_bytes(onx.SerializeToString())
    return X


def torch_classifier(path: Path, seed: int, sigmoid: bool) -> np.ndarray:
    """Train a torch net ending in Softmax (20-32-16-5) or Sigmoid (30-20-1, breast cancer)."""
    import torch
    from sklearn.datasets import load_breast_cancer, make_classification

    torch.manual_seed(seed)
    if sigmoid:
        X, y = load_breast_cancer(return_X_y=True)
        layers = [torch.nn.Linear(30, 20), torch.nn.ReLU(), torch.nn.Linear(20, 1)]
    else:
        X, y = make_classification(
            1000, 20, n_informative=10, n_classes=5, n_clusters_per_class=1, random_state=seed
        )
        layers = [
            torch.nn.Linear(20, 32),
            torch.nn.ReLU(),
            torch.nn.Linear(32, 16),
            torch.nn.ReLU(),
            torch.nn.Linear(16, 5),
        ]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    body = torch.nn.Sequential(*layers).double()
    opt = torch.optim.Adam(body.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(300):
        opt.zero_grad()
        z = body(xt)
        if sigmoid:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z[:, 0], yt.double())
        else:
            loss = torch.nn.functional.cross_entropy(z, yt)
        loss.backward()
        opt.step()
    head = torch.nn.Sigmoid() if sigmoid else torch.nn.Softmax(dim=1)
    model = torch.nn.Sequential(body, head).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            torch.zeros(1, X.shape[1], dtype=torch.float64),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["p"],
            dynamic_axes={"x": {0: "batch"}, "p": {0: "batch"}},
        )
    return X


OUTPUTS = {"skl32": "output_probability", "skl64": "probabilities"}


def attack(path: Path, out: Path, seed: int, data: np.ndarray, output: str | None) -> str:
    """``glassbox extract`` on ``path``; one line of what it reached."""
    args = ["extract", str(path), "--out", str(out), "--seed", str(seed), "--quiet"]
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = glassbox(args)
    seconds = time.perf_counter() - t
    rec = read_json(out / "extraction.json")
    line = f"exit {code}; {rec['message'][:110]}; queries 2^{math.log2(rec['queries']):.2f}, {seconds:.0f} s"
    v = rec.get("verification")
    if code != 0 and rec.get("classifier"):
        line += "; " + control(path, output, seed, rec["classifier"]["reference"])
    if v is None:
        return line
    line += f"; weight error {fmt_log2(v['max_weight_error_log2'])}"
    line += f", functional error {fmt_log2(v['epsilon_log2'])}"
    if "classifier" in v:
        truth = ReLUNet.from_onnx(path, allow_float32=True, output=output)
        recovered = ReLUNet.load(out / "recovered.safetensors")
        cv = verify_classifier(recovered, truth, seed=seed, data=data)
        line += (
            f" (log-ratios); probabilities {fmt_log2(cv.worst_probability_error_log2)}; "
            f"same class: {cv.argmax_agreement['data']:.2%} of the data, "
            f"{cv.argmax_agreement['gaussian']:.2%} of Gaussian inputs"
        )
    return line


def control(path: Path, output: str | None, seed: int, reference: int | None) -> str:
    """The same attack on the truth's logit differences, asked directly (no softmax, float64):
    whether a failure is the classifier's or the attack's on this net."""
    truth = ReLUNet.from_onnx(path, allow_float32=True, output=output)
    body = truth.without_head() if reference is None else logit_differences(truth, reference)
    oracle, how = net_oracle(body), "float64"
    if computes_in_float32(OnnxOracle(path, allow_float32=True, output=output)):
        oracle, how = float32_outputs(oracle), "rounded to float32"
    result = extract(oracle, ExtractConfig(seed=seed))
    return f"control (its logits asked directly, {how}): {result.message[:100]}"


def main() -> None:
    """Build each row's targets and attack them."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", default="skl32,skl64,torch5,sigmoid,regressor")
    ap.add_argument("--seeds", default=None, help="override every row's seeds, e.g. 0-1")
    args = ap.parse_args()
    seeds = {"skl32": "0-2", "skl64": "0-2", "torch5": "0-4", "sigmoid": "0", "regressor": "0"}
    with tempfile.TemporaryDirectory() as tmp:
        for row in args.rows.split(","):
            for seed in parse_seeds(args.seeds or seeds[row]):
                path = Path(tmp) / f"{row}-{seed}.onnx"
                if row in ("skl32", "skl64", "regressor"):
                    data = sklearn_digits(path, seed, row == "skl32", row == "regressor")
                else:
                    data = torch_classifier(path, seed, row == "sigmoid")
                load = os.getloadavg()[0]
                line = attack(path, Path(tmp) / f"{row}-{seed}", seed, data, OUTPUTS.get(row))
                print(f"{row} seed {seed} (load {load:.1f}): {line}", flush=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
