"""``glassbox demo`` and ``glassbox report``: the main job and its report.

The demo module (torch, matplotlib) is imported inside the commands, so that registering
them costs nothing.
"""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path
from types import FrameType

import click

from glassbox.cli import cli, show_progress, threads_option
from glassbox.errors import GlassboxError
from glassbox.extras import require


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
@click.option(
    "--seed", type=click.IntRange(min=0), default=None, help="Override the training seed."
)
@click.option(
    "--budget",
    type=click.IntRange(min=1),
    default=None,
    help="Most queries the attack may ask [default: the config's, unlimited].",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bars on stderr [default: only when stderr is a terminal].",
)
@click.option("--quiet", is_flag=True, help="No stage messages and no bars on stderr.")
@click.option(
    "--in-process",
    is_flag=True,
    help="Attack the net in this process (faster) instead of over HTTP to a separate service.",
)
@threads_option("CPU threads of training, the attack and the service", "by their shapes")
def demo(
    out: Path | None,
    overwrite: bool,
    paper_size: bool,
    config_file: Path | None,
    seed: int | None,
    budget: int | None,
    progress: bool | None,
    quiet: bool,
    in_process: bool,
    threads: int | None,
) -> None:
    """Train a toy model, reconstruct it from queries alone, verify, and write report.html.

    Exit status 0 when the attack's own check passes, 1 when the attack fails (what was
    made is kept and its folder named), 2 on a usage error.
    """
    require("torch", "glassbox demo (training the toy model)")
    if paper_size and config_file is not None:
        raise GlassboxError("give --paper-size or --config, not both")
    if config_file is not None and not config_file.is_file():
        raise GlassboxError(f"--config {config_file}: no such file")
    if out is not None:
        from glassbox.io import check_out_dir as io_check_out_dir

        io_check_out_dir(out, overwrite, marker="config.json")  # before torch: answers at once
    from glassbox.config import load_config
    from glassbox.demo.run import DemoConfig, check_out_dir, default_out_dir, paper_config, run_demo

    if config_file is not None:
        try:
            config = load_config(DemoConfig, config_file)
        except GlassboxError as exc:
            what = str(exc).removeprefix(f"{config_file}: ")
            raise GlassboxError(f"--config {config_file}: {what}") from None
    else:
        config = paper_config() if paper_size else DemoConfig()
    if seed is not None:
        config = dataclasses.replace(config, toy=dataclasses.replace(config.toy, seed=seed))
    if budget is not None:
        config = dataclasses.replace(config, budget=budget)
    if out is not None:
        check_out_dir(out, overwrite)
    from glassbox.cli.toy import check_memory

    check_memory(config.toy, "choose a smaller toy model in --config")
    folder = out or default_out_dir()
    # SIGTERM (a `kill`, a closing terminal) unwinds like Ctrl-C, so the cleanup below runs.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        result = run_demo(
            config,
            folder,
            overwrite=overwrite,
            progress=not quiet,
            bars=False if quiet else show_progress(progress),
            in_process=in_process,
            threads=threads,
        )
    except BaseException:
        if out is None and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # the fresh folder reserved above, still empty
        raise
    if result.report is None:
        click.echo(f"the attack recovered no network: {result.message}", err=True)
        click.echo(
            f"kept the trained model and the attack's figures in {result.directory} "
            "(toy/, truth.safetensors, extraction.json)",
            err=True,
        )
        raise click.exceptions.Exit(1)
    click.echo(f"report: {result.report}")
    for line in result.summary:
        click.echo(line)
    if not result.success:
        click.echo("the attack's own check reports failure; see the report", err=True)
        raise click.exceptions.Exit(1)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir: Path) -> None:
    """Rebuild RUN_DIR/report.html from a saved demo run or a glassbox extract folder."""
    # Checked before the report's imports (matplotlib, torch): a wrong folder answers at once.
    if not run_dir.is_dir():
        what = "a file, not a run directory" if run_dir.exists() else "no such run directory"
        raise GlassboxError(f"{run_dir}: {what}")
    if not (run_dir / "extraction.json").is_file():
        raise GlassboxError(
            f"{run_dir} is not a glassbox demo run (no extraction.json) nor a `glassbox extract` "
            "folder; make one with `glassbox demo` or `glassbox extract --out`"
        )
    from glassbox.report.extraction import is_extract_dir, rebuild_extract_report

    if is_extract_dir(run_dir):
        click.echo(f"report: {rebuild_extract_report(run_dir)}")
        return
    require("torch", "glassbox report (reading the toy model's config)")
    from glassbox.demo.run import rebuild_report

    click.echo(f"report: {rebuild_report(run_dir)}")
