"""``glassbox extract``: recover a ReLU net of any depth from queries alone."""

from __future__ import annotations

import math
from pathlib import Path

import click

from glassbox.cli import cli, show_progress
from glassbox.config import config_to_dict, save_config
from glassbox.errors import GlassboxError
from glassbox.extract.attack import ExtractConfig, extract
from glassbox.io import staged_dir, write_json
from glassbox.oracle.checkpoint import CHECKPOINT, checkpointed, prepare
from glassbox.oracle.targets import resolve_target
from glassbox.toy.target import toy_instance
from glassbox.verify.compare import fmt_log2, verify


@cli.command("extract")
@click.argument("target")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write (refuses a non-empty one unless --overwrite).",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace an existing --out written by glassbox extract."
)
@click.option(
    "--budget",
    type=click.IntRange(min=1),
    default=None,
    help="Most queries the attack may ask [default: grows with the input and output widths].",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the attack (and of random:SPEC).",
)
@click.option(
    "--instance",
    type=click.IntRange(min=0),
    default=None,
    help="Which instance of a toy run directory to attack [default: 0].",
)
@click.option(
    "--float32",
    is_flag=True,
    help="Round a float64 target's answers to float32 (a float32 ONNX file needs no flag).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr [default: only when stderr is a terminal].",
)
@click.option("--quiet", is_flag=True, help="No progress bar (same as --no-progress).")
@click.option(
    "--report",
    "report",
    is_flag=True,
    help="Also write report.html: one self-contained page of the run's figures.",
)
@click.option(
    "--architecture",
    default=None,
    help="Optional hint, e.g. 40-20-10-10-1: widths let the search stop early and name unseen neurons.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Go on from the checkpoint an interrupted run left in --out (same TARGET and options).",
)
@click.option(
    "--checkpoint-every",
    type=click.FloatRange(min=0.0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds between checkpoint writes to --out/checkpoint (kept until the run ends).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="BLAS threads [default: chosen by the target's widths, 1 below 8192 inputs; never by load].",
)
def extract_command(
    target: str,
    out: Path,
    overwrite: bool,
    budget: int | None,
    seed: int,
    instance: int | None,
    float32: bool,
    progress: bool | None,
    quiet: bool,
    report: bool,
    architecture: str | None,
    resume: bool,
    checkpoint_every: float,
    threads: int | None,
) -> None:
    """Extract TARGET (random:SPEC, toy run dir, ONNX file or saved net) into --out.

    Writes recovered.safetensors, config.json, extraction.json (with a verification
    object when the truth is known here; the attack never sees it), line.json and
    line.png/.svg; with --report also report.html (`glassbox report DIR` rebuilds it).
    TARGET may also be http://HOST:PORT, a running `glassbox serve` (API key from
    GLASSBOX_API_KEY). A checkpoint in --out/checkpoint lets --resume go on after a kill.
    Exit status 0 when the attack's self-check passes, 1 when it reports failure,
    2 on a usage error.
    """
    resuming = prepare(out, resume, overwrite, marker="extraction.json")
    tgt = resolve_target(
        target,
        seed=seed,
        instance=instance,
        budget=budget,
        float32=float32,
        toy_loader=toy_instance,
    )
    config = ExtractConfig(seed=seed, architecture=architecture)
    if architecture is not None:
        from glassbox.mlp import parse_spec

        dims = parse_spec(architecture)[0]
        if (dims[0], dims[-1]) != (tgt.oracle.input_dim, tgt.oracle.output_dim):
            raise GlassboxError(
                f"--architecture {architecture} has {dims[0]} inputs and {dims[-1]} outputs, but "
                f"the target has {tgt.oracle.input_dim} and {tgt.oracle.output_dim}"
            )
    click.echo(f"extracting {tgt.description}", err=True)
    key = {
        "target": "a service" if "://" in target else tgt.description,
        "config": config_to_dict(config),
    }
    oracle = checkpointed(
        tgt.oracle, out, key, resume=resuming, every=checkpoint_every, budget=budget
    )
    try:
        result = extract(
            oracle, config, progress=show_progress(False if quiet else progress), threads=threads
        )
    except BaseException:
        oracle.flush()  # keep every answer so far for --resume
        raise
    record = {"target": tgt.description, **result.to_json()}
    if resuming:
        record["resumed"] = {"replayed_queries": oracle.replayed}
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
    with staged_dir(out, overwrite or (out / CHECKPOINT).exists()) as tmp:
        if result.net is not None:
            result.net.save(tmp / "recovered.safetensors")
        save_config(config, tmp / "config.json")
        write_json(tmp / "extraction.json", record)
        if result.line is not None:
            from glassbox.report.line_file import LINE, line_to_json
            from glassbox.report.lineplot import save_line_plot

            write_json(tmp / LINE, line_to_json(result.line))
            save_line_plot(result.line, tmp / "line")
        if report:
            from glassbox.report.extraction import REPORT, build_extract_report

            page = build_extract_report(record, result.line, tmp)
            (tmp / REPORT).write_text(page, encoding="utf-8")

    click.echo(result.message)
    if result.answers and result.answers.get("kind") != "float64":
        click.echo(f"answers: {result.answers['description']}")
    click.echo(f"architecture: {result.architecture or 'not recovered'}")
    for layer in result.layers:
        click.echo(
            f"  layer {layer['layer']}: {layer['neurons']} neurons, {layer['queries']} queries, "
            f"{layer['seconds']:.1f} s, signs by {layer['sign_method']} "
            f"(lowest confidence {layer['lowest_sign_confidence']:.2f})"
        )
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
    if resuming:
        click.echo(f"resumed: {oracle.replayed} of the queries answered from the checkpoint")
    click.echo(f"wrote {out}")
    if report:
        click.echo(f"report: {out / 'report.html'}")
    if not result.success:
        raise click.exceptions.Exit(1)
