"""``glassbox net``: make, inspect, export and import ReLUNet files."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from glassbox.cli import cli
from glassbox.errors import GlassboxError
from glassbox.io import check_out_file
from glassbox.mlp import ReLUNet

OVERWRITE = click.option("--overwrite", is_flag=True, help="Replace an existing output file.")


@cli.group()
def net() -> None:
    """Make and inspect ReLU networks saved as safetensors."""


@net.command("new")
@click.argument("spec")
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed."
)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@OVERWRITE
def net_new(spec: str, seed: int, out: Path, overwrite: bool) -> None:
    """Write a seeded random net, SPEC like 784-128-1 or 100-40-100:nohiddenbias,relu.

    Weights are N(0, 2/fan_in) (He), biases N(0, 1); options: nobias, nohiddenbias, relu.
    """
    from glassbox.oracle.targets import random_net

    check_out_file(out, overwrite)
    model = random_net(spec.removeprefix("random:"), seed=seed)
    model.save(out)
    click.echo(f"wrote {out}: {model.describe()}, {model.n_params} parameters")


def describe_layers(model: ReLUNet) -> str:
    """One table row per layer: shape, bias, activation and weight norms."""
    rows = [
        f"  {'layer':<6} {'shape':>11}  {'bias':<5} {'then':<5} "
        f"{'|W|_F':>9} {'max|W|':>9} {'min row':>9} {'|b|':>9}"
    ]
    last = len(model.weights) - 1
    for i, (w, b) in enumerate(zip(model.weights, model.biases, strict=True)):
        act = "relu" if i < last or model.output_relu else "-"
        row_norms = np.linalg.norm(w, axis=1)
        bias = "-" if b is None else f"{np.linalg.norm(b):9.4g}"
        rows.append(
            f"  {i:<6} {f'{w.shape[1]} -> {w.shape[0]}':>11}  {'yes' if b is not None else 'no':<5} "
            f"{act:<5} {np.linalg.norm(w):9.4g} {np.abs(w).max():9.4g} {row_norms.min():9.4g} "
            f"{bias:>9}"
        )
    return "\n".join(rows)


def load_net(path: Path) -> ReLUNet:
    """A saved net: an ``.onnx`` file read as ONNX, anything else as safetensors."""
    if path.is_dir():
        raise GlassboxError(f"{path} is a folder; give a net file (.safetensors or .onnx)")
    if path.suffix.lower() == ".onnx" and path.is_file():
        from glassbox.extras import require

        require("onnx", f"reading {path}")
        return ReLUNet.from_onnx(path, allow_float32=True)
    return ReLUNet.load(path)


@net.command("info")
@click.argument("file", type=click.Path(path_type=Path))
def net_info(file: Path) -> None:
    """Describe a saved net (safetensors or ONNX): widths, biases, output ReLU, parameters, norms."""
    model = load_net(file)
    click.echo(f"{file}: {model.describe()}, {model.n_params} parameters")
    click.echo(describe_layers(model))


@net.command("export")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--onnx",
    "onnx_out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Write a float64 ONNX graph here.",
)
@OVERWRITE
def net_export(file: Path, onnx_out: Path, overwrite: bool) -> None:
    """Export a saved net to ONNX (float64 Gemm and Relu nodes)."""
    check_out_file(onnx_out, overwrite, flag="--onnx")
    model = load_net(file)
    model.to_onnx(onnx_out)
    click.echo(f"wrote {onnx_out}: {model.describe()}")


@net.command("import")
@click.argument("onnx_file", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--allow-float32",
    is_flag=True,
    help="Accept a float32 graph (its weights are widened to float64 exactly).",
)
@click.option(
    "--output",
    "output",
    metavar="NAME",
    default=None,
    help="The graph output to read, when it has several (e.g. a classifier's probabilities).",
)
@OVERWRITE
def net_import(
    onnx_file: Path, out: Path, allow_float32: bool, output: str | None, overwrite: bool
) -> None:
    """Read an ONNX chain of Gemm | MatMul+Add, Relu (then Softmax or Sigmoid) into a glassbox net."""
    check_out_file(out, overwrite)
    model = ReLUNet.from_onnx(onnx_file, allow_float32=allow_float32, output=output)
    model.save(out)
    click.echo(f"wrote {out}: {model.describe()}, {model.n_params} parameters")
