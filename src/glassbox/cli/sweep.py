"""``glassbox sweep GRID.toml --out DIR`` and ``glassbox sweep-plot DIR``: grids of runs."""

from __future__ import annotations

from pathlib import Path

import click

from glassbox.cli import cli, show_progress, threads_option
from glassbox.errors import GlassboxError

#: What one spawned --workers process holds at least, torch imported: about 256 MiB.
WORKER_BYTES = 2.0**28


def parse_sets(items: tuple[str, ...]) -> dict[str, object]:
    """``("steps=500", "seed=[0,1]")`` -> ``{"steps": 500, "seed": [0, 1]}`` (values read as TOML)."""
    from glassbox.sweep.grid import parse_value

    values: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise GlassboxError(f"--set {item!r}: expected KEY=VALUE, e.g. --set steps=2000")
        values[key.strip()] = parse_value(text.strip())
    return values


@cli.command("sweep")
@click.argument("grid", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Sweep folder; run again to resume (finished points are skipped).",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Run points in N local processes, one thread each unless --threads says more "
    "[default: in this process].",
)
@threads_option("Threads of each --workers process", "1")
@click.option(
    "--dask",
    "dask",
    metavar="ADDRESS",
    default=None,
    help="Run points on the Dask cluster whose scheduler is at ADDRESS, e.g. tcp://host:8786.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a fixed setting or an axis (a list), e.g. --set steps=2000 --set 'seed=[0,1]'.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar over points on stderr [default: only when stderr is a terminal].",
)
def sweep_command(
    grid: Path,
    out: Path,
    workers: int | None,
    threads: int | None,
    dask: str | None,
    sets: tuple[str, ...],
    progress: bool | None,
) -> None:
    """Run every point of the GRID.toml file into --out (see examples/ and the README).

    Exit status 0 when every point finished, 1 when some failed (listed), 2 on a usage
    error. An extraction that reports failure is a finished point, not a failed one.
    """
    from glassbox.sweep import load_grid, run_sweep
    from glassbox.sweep.executors import open_executor
    from glassbox.sweep.runner import check_folder

    spec = load_grid(grid, parse_sets(sets))
    n_points = len(spec.points())
    if n_points == 0:
        raise GlassboxError(
            f"grid {spec.name} has no points (an axis is an empty list); give every axis a value"
        )
    if workers is not None and workers > 1:
        from glassbox.oracle.targets import check_fits

        # Each spawned worker imports NumPy and torch before its first point.
        check_fits(workers * WORKER_BYTES, f"--workers {workers:,} processes", "lower --workers")
    check_folder(out, spec)  # before starting workers or reaching a cluster
    with open_executor(workers, dask, threads) as pool:
        plural = "s" if n_points != 1 else ""
        click.echo(
            f"sweep {spec.name}: {n_points} {spec.job} point{plural} on {pool.description}",
            err=True,
        )
        outcome = run_sweep(spec, out, pool, progress=show_progress(progress))
    for line in outcome.failed:
        click.echo(f"failed: {line}", err=True)
    click.echo(
        f"sweep {spec.name}: {outcome.total} points, {outcome.ran} run, "
        f"{outcome.skipped} already finished, {len(outcome.failed)} failed, "
        f"{outcome.seconds:.1f} s"
    )
    click.echo(f"wrote {out}")
    if outcome.failed:
        raise click.exceptions.Exit(1)


@cli.command("sweep-plot")
@click.argument("directory", type=click.Path(path_type=Path))
def sweep_plot_command(directory: Path) -> None:
    """Draw a sweep folder: phase diagram and loss (train), or success table (extract)."""
    from glassbox.sweep.plots import plot_sweep_dir

    table, files = plot_sweep_dir(directory)
    click.echo(table, nl=False)
    for path in files:
        click.echo(f"wrote {path}")
