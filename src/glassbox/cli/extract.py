"""``glassbox extract``: recover a ReLU net of any depth from queries alone."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from glassbox.cli import FiniteRange, cli, show_progress, threads_option
from glassbox.config import config_to_dict, save_config
from glassbox.errors import GlassboxError
from glassbox.extract.attack import ExtractConfig, extract
from glassbox.extract.records import ExtractionResult
from glassbox.io import staged_dir, write_json
from glassbox.mlp import ReLUNet
from glassbox.oracle.checkpoint import CHECKPOINT, checkpointed, prepare
from glassbox.oracle.core import Oracle
from glassbox.oracle.logits import UNDERFLOW, Head, logit_view, with_head
from glassbox.oracle.probe import view_head
from glassbox.oracle.targets import resolve_target
from glassbox.toy.target import toy_instance
from glassbox.verify.classifier import verify_classifier
from glassbox.verify.compare import fmt_log2, verify

# How much smaller the input scale of a classifier's second try, after an underflow.
FAR = 8.0


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
    help="Seed of the attack (and of random:SPEC unless --net-seed is given).",
)
@click.option(
    "--net-seed",
    type=click.IntRange(min=0),
    default=None,
    help="Seed of a random:SPEC net, apart from the attack's [default: --seed].",
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
    type=FiniteRange(min=0.0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds between checkpoint writes to --out/checkpoint (kept until the run ends).",
)
@click.option(
    "--output",
    "output",
    metavar="NAME",
    default=None,
    help="The output of an ONNX file with several [default: its one real-valued (batch, k) output].",
)
@threads_option("BLAS threads", "chosen by the target's widths, 1 below 8192 inputs")
def extract_command(
    target: str,
    out: Path,
    overwrite: bool,
    budget: int | None,
    seed: int,
    net_seed: int | None,
    instance: int | None,
    float32: bool,
    progress: bool | None,
    quiet: bool,
    report: bool,
    architecture: str | None,
    resume: bool,
    checkpoint_every: float,
    output: str | None,
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
    hint = None if architecture is None else architecture_widths(architecture)
    resuming = prepare(out, resume, overwrite, marker="extraction.json")
    tgt = resolve_target(
        target,
        seed=seed if net_seed is None else net_seed,
        instance=instance,
        budget=budget,
        float32=float32,
        toy_loader=toy_instance,
        output=output,
    )
    if hint is not None:
        check_ends(architecture or "", hint, tgt.oracle)  # before the first query
    config = ExtractConfig(seed=seed, architecture=architecture)
    click.echo(f"extracting {tgt.description}", err=True)
    key = {
        "target": "a service" if "://" in target else tgt.description,
        "config": config_to_dict(config),
    }
    oracle = checkpointed(
        tgt.oracle, out, key, resume=resuming, every=checkpoint_every, budget=budget
    )
    try:
        bar = show_progress(False if quiet else progress)
        result, first, head = _attack(oracle, config, bar, threads)
    except BaseException:
        oracle.flush()  # keep every answer so far for --resume
        raise
    if first is not None:
        config = first.config
    record: dict[str, Any] = {"target": tgt.description, **result.to_json()}
    net = result.net
    if first is not None and head is not None:
        _classifier_record(record, first, head)
        if net is not None:
            net = with_head(net, head)
            record["classifier"]["attacked_architecture"] = record["architecture"]
            record["architecture"] = "-".join(map(str, net.dims))
            record["net"] = net.describe()
    if resuming:
        record["resumed"] = {"replayed_queries": oracle.replayed}
    if net is not None and tgt.truth is not None:
        _verification(record, net, tgt.truth, seed, tgt.sparse_probability)

    # Everything goes to a fresh folder beside --out, moved into place at the end.
    with staged_dir(out, overwrite or (out / CHECKPOINT).exists()) as tmp:
        if net is not None:
            net.save(tmp / "recovered.safetensors")
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
    answers = record.get("answers") or {}
    if answers and answers.get("kind") != "float64":
        click.echo(f"answers: {answers['description']}")
    arch = record["architecture"] or "not recovered"
    if "attacked_architecture" in record.get("classifier", {}):
        c = record["classifier"]
        arch += f", then {c['head']} (attacked as {c['attacked_architecture']}: {c['attacked']})"
    click.echo(f"architecture: {arch}")
    for layer in result.layers:
        click.echo(
            f"  layer {layer['layer']}: {layer['neurons']} neurons, {layer['queries']} queries, "
            f"{layer['seconds']:.1f} s, signs by {layer['sign_method']} "
            f"(lowest confidence {layer['lowest_sign_confidence']:.2f})"
        )
    queries = int(record["queries"])
    click.echo(
        f"queries 2^{math.log2(max(queries, 1)):.2f} ({queries}), "
        f"{result.seconds:.1f} s, peak RSS {result.peak_rss_mb:.0f} MiB"
    )
    if "verification" in record:
        v = record["verification"]
        click.echo(
            f"verification: max weight error {fmt_log2(v['max_weight_error_log2'])}, "
            f"functional error {fmt_log2(v['epsilon_log2'])}"
            + (_compared(v["classifier"]) if "classifier" in v else "")
        )
        if "classifier" in v:
            c = v["classifier"]
            click.echo(
                f"probabilities: max error {fmt_log2(c['max_probability_error_log2'])}, "
                f"same class on {c['min_argmax_agreement']:.2%} of sampled inputs"
            )
    if resuming:
        click.echo(f"resumed: {oracle.replayed} of the queries answered from the checkpoint")
    click.echo(f"wrote {out}")
    if report:
        click.echo(f"report: {out / 'report.html'}")
    if not result.success:
        raise click.exceptions.Exit(1)


def architecture_widths(text: str) -> list[int]:
    """The widths of an ``--architecture`` hint; anything but ``IN-H1-...-OUT`` is a one-line error."""
    from glassbox.mlp import parse_spec

    shown = text if len(text) <= 60 else text[:60] + "..."
    body, colon, options = text.partition(":")
    if colon:
        raise GlassboxError(
            f"--architecture {shown!r}: a hint is the widths alone; drop ':{options}'"
        )
    try:
        dims = parse_spec(body)[0]
    except GlassboxError:
        dims = []
    if len(dims) < 3 or min(dims) < 1:
        raise GlassboxError(
            f"--architecture {shown!r}: expected widths of at least 1 joined by '-', input "
            "first and output last, with at least one hidden layer, e.g. 10-20-1"
        )
    return dims


def check_ends(text: str, dims: list[int], oracle: Oracle) -> None:
    """Refuse a hint whose input or output width is not the black box's."""
    d, m = oracle.input_dim, oracle.output_dim
    if (dims[0], dims[-1]) != (d, m):
        raise GlassboxError(
            f"--architecture {text}: {dims[0]} input(s) and {dims[-1]} output(s), but the target "
            f"has {d} input(s) and {m} output(s); give {d}-...-{m}, e.g. {d}-20-{m}, "
            "or drop --architecture"
        )


def _attack(
    oracle: Oracle, config: ExtractConfig, progress: bool, threads: int | None = None
) -> tuple[ExtractionResult, ExtractionResult | None, Head | None]:
    """The attack; on a classifier's probabilities, again on their logit view.

    Returns the result, the run that found probabilities (its config carries the view's
    precision and input scale; its queries include a view run stopped by an underflow),
    and their head.
    """
    result = extract(oracle, config, progress=progress, threads=threads)
    head = view_head(result.answers)
    if head is None:
        return result, None, None
    click.echo(
        f"answers: {result.answers['description']}: attacking the {head.describe()}", err=True
    )
    # The view's precision, and an input scale at which no line reaches a class's underflow.
    scale = min(config.input_scale, float(result.answers["input_scale"]))
    precise = replace(config, output_precision=float(result.answers["eps"]), input_scale=scale)
    second = extract(logit_view(oracle, head), precise, progress=progress, threads=threads)
    spent = result.queries
    if not second.success and UNDERFLOW in second.message:
        # A second look at a layer reaches 16 times further than the scale was set for.
        spent += second.queries
        precise = replace(precise, input_scale=scale / FAR)
        click.echo(f"{second.message}; again at input scale {scale / FAR:.3g}", err=True)
        second = extract(logit_view(oracle, head), precise, progress=progress, threads=threads)
    return second, replace(result, config=precise, queries=spent), head


def _classifier_record(record: dict[str, Any], first: ExtractionResult, head: Head) -> None:
    """The probabilities' profile as the answers, and every query of both runs counted."""
    record["attacked_answers"] = record["answers"]
    record["answers"] = first.answers
    record["classifier"] = {
        "head": head.kind,
        "classes": head.classes,
        "reference": head.reference if head.kind == "softmax" else None,
        "attacked": head.describe(),
        "queries_before": first.queries,
        "input_scale": first.config.input_scale,
    }
    # Both runs asked the same ledger: its phases already hold the first run's queries.
    record["queries"] += first.queries
    record["queries_log2"] = math.log2(record["queries"])


def _verification(
    record: dict[str, Any], net: ReLUNet, truth: ReLUNet, seed: int, sparse: float | None
) -> None:
    """The verification object: the classifier's figures when both nets have the same head."""
    queries = int(record["queries"])
    if truth.head != "identity" and net.head == truth.head:
        cv = verify_classifier(net, truth, n_samples=4096, seed=seed, queries=queries)
        record["verification"] = {**cv.logits.to_json(), "classifier": cv.to_json()}
    elif truth.head == net.head:
        ver = verify(
            net, truth, n_samples=4096, seed=seed, sparse_probability=sparse, queries=queries
        )
        record["verification"] = ver.to_json()
    else:
        record["verification_skipped"] = (
            f"the truth answers through a {truth.head} head, the recovered net through {net.head}"
        )


def _compared(c: dict[str, Any]) -> str:
    return (
        " (of the logits, common shift removed)" if c["head"] == "softmax" else " (of the logits)"
    )
