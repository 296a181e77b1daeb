"""``glassbox net``: make and inspect ReLUNet files."""

from __future__ import annotations

from pathlib import Path

import click

from glassbox.cli import cli
from glassbox.mlp import ReLUNet


@cli.group()
def net() -> None:
    """Make and inspect ReLU networks saved as safetensors."""


@net.command("new")
@click.argument("spec")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def net_new(spec: str, seed: int, out: Path) -> None:
    """Write a seeded random net, SPEC like 784-128-1 or 100-40-100:nohiddenbias,relu."""
    body = spec.removeprefix("random:")
    model = ReLUNet.random(body, seed=seed)
    model.save(out)
    click.echo(f"wrote {out}: {model.describe()}, {model.n_params} parameters")


@net.command("info")
@click.argument("file", type=click.Path(path_type=Path))
def net_info(file: Path) -> None:
    """Describe a saved net."""
    model = ReLUNet.load(file)
    click.echo(f"{file}: {model.describe()}, {model.n_params} parameters")
