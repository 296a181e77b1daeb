"""``glassbox extract``: recover a one-hidden-layer net from queries alone."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import click

from glassbox.cli import cli
from glassbox.config import save_config
from glassbox.extract.attack import ExtractConfig, extract
from glassbox.extract.lineplot import save_line_plot
from glassbox.extract.verify import fmt_log2, verify
from glassbox.io import write_json
from glassbox.targets import resolve_target


@cli.command("extract")
@click.argument("target")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--budget", type=int, default=None, help="Most queries the attack may ask.")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the attack (and of random:SPEC).",
)
@click.option("--instance", type=int, default=0, show_default=True, help="Toy run instance.")
@click.option("--float32", is_flag=True, help="Round the oracle's answers to float32.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def extract_command(
    target: str,
    out: Path,
    budget: int | None,
    seed: int,
    instance: int,
    float32: bool,
    quiet: bool,
) -> None:
    """Extract TARGET (random:SPEC, toy run dir, ONNX file or saved net) into --out.

    Writes recovered.safetensors, config.json, extraction.json (with a verification
    object when the truth is known here; the attack never sees it) and line.png/.svg.
    Exit status 0 when the attack's self-check passes, 1 when it reports failure.
    """
    if budget is not None and budget < 1:
        raise click.BadParameter("must be at least 1", param_hint="--budget")
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} exists and is not a directory", param_hint="--out")
    tgt = resolve_target(target, seed=seed, instance=instance, budget=budget, float32=float32)
    config = ExtractConfig(seed=seed)
    click.echo(f"extracting {tgt.description}", err=True)
    result = extract(tgt.oracle, config, progress=not quiet)
    record = {"target": tgt.description, **result.to_json()}
    if result.net is not None and tgt.truth is not None:
        ver = verify(
            result.net,
            tgt.truth,
            n_samples=4096,
            seed=seed,
            sparse_probability=tgt.sparse_probability,
            queries=result.queries,
        )
        record["verification"] = ver.to_json()

    # Everything goes to a fresh folder beside --out, moved into place at the end.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if result.net is not None:
            result.net.save(tmp / "recovered.safetensors")
        save_config(config, tmp / "config.json")
        write_json(tmp / "extraction.json", record)
        if result.line is not None:
            save_line_plot(result.line, tmp / "line")
        out.mkdir(exist_ok=True)
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    click.echo(result.message)
    click.echo(
        f"queries 2^{math.log2(max(result.queries, 1)):.2f} ({result.queries}), "
        f"{result.seconds:.1f} s, peak RSS {result.peak_rss_mb:.0f} MiB"
    )
    if "verification" in record:
        v = record["verification"]
        click.echo(
            f"verification: max weight error {fmt_log2(v['max_weight_error_log2'])}, "
            f"functional error {fmt_log2(v['epsilon_log2'])}"
        )
    click.echo(f"wrote {out}")
    if not result.success:
        raise click.exceptions.Exit(1)
