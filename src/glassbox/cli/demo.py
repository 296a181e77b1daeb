"""``glassbox demo`` and ``glassbox report``: the main job and its report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from glassbox.cli import cli
from glassbox.config import load_config
from glassbox.demo import DemoConfig, default_out_dir, paper_config, rebuild_report, run_demo
from glassbox.errors import GlassboxError


@cli.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run directory to create [default: a fresh runs/demo-YYYYMMDD-HHMMSS].",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing demo run directory.")
@click.option(
    "--paper-size",
    is_flag=True,
    help="The paper's size: 100 features, 40 neurons (minutes, not seconds).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A DemoConfig JSON file (e.g. a run's config.json) to repeat or vary a run.",
)
@click.option("--seed", type=int, default=None, help="Override the training seed.")
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Stage messages and bars on stderr.",
)
def demo(
    out: Path | None,
    overwrite: bool,
    paper_size: bool,
    config_file: Path | None,
    seed: int | None,
    progress: bool,
) -> None:
    """Train a toy model, reconstruct it from queries alone, verify, and write report.html."""
    if paper_size and config_file is not None:
        raise GlassboxError("give --paper-size or --config, not both")
    if config_file is not None:
        config = load_config(DemoConfig, config_file)
    else:
        config = paper_config() if paper_size else DemoConfig()
    if seed is not None:
        config = dataclasses.replace(config, toy=dataclasses.replace(config.toy, seed=seed))
    result = run_demo(config, out or default_out_dir(), overwrite=overwrite, progress=progress)
    click.echo(f"report: {result.report}")
    for line in result.summary:
        click.echo(line)
    if not result.success:
        click.echo("the attack's own check reports failure; see the report", err=True)
        raise click.exceptions.Exit(1)


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir: Path) -> None:
    """Rebuild RUN_DIR/report.html from a saved demo run."""
    click.echo(f"report: {rebuild_report(run_dir)}")
