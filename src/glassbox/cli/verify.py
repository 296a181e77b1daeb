"""``glassbox verify``: hold a recovered net against the true one."""

from __future__ import annotations

from pathlib import Path

import click

from glassbox.cli import FiniteRange, cli
from glassbox.cli.net import load_net
from glassbox.io import check_out_file, dumps_json, write_json
from glassbox.oracle.targets import check_fits
from glassbox.verify.classifier import verify_classifier
from glassbox.verify.compare import Verification, fmt_log2, verify


def render(v: Verification) -> str:
    """The verification as a readable table."""
    lines = [
        f"truth      {v.truth}",
        f"recovered  {v.recovered}",
        "",
        "weight error  max |theta - theta_hat| after alignment, neurons normalised to unit rows",
    ]
    for i, e in enumerate(v.per_layer_error_log2):
        lines.append(f"  {f'W{i + 1}':<12} {fmt_log2(e)}")
    lines.append(f"  {'overall':<12} {fmt_log2(v.max_weight_error_log2)}")
    lines += [
        "",
        f"functional error  |f - f_hat|, delta = fraction above 2^{v.delta_threshold_log2:.1f}",
        f"  {'inputs':<12} {'n':>6}  {'max error':>12}  {'delta':>8}  {'same pattern':>12}",
    ]
    for name, d in v.per_distribution.items():
        lines.append(
            f"  {name:<12} {d.n:>6}  {fmt_log2(d.epsilon_log2):>12}  {d.delta:>8.4f}  "
            f"{d.same_pattern_fraction:>12.4f}"
        )
    lines += [
        f"  {'all':<12} {'':>6}  {fmt_log2(v.epsilon_log2):>12}  {v.delta:>8.4f}  "
        f"{v.same_pattern_fraction:>12.4f}  (pattern: off-hyperplane inputs)",
        "",
        f"worst-case bound on [-1, 1]^d: {fmt_log2(v.worst_case_bound_log2)}",
        f"queries: {'unknown' if v.queries is None else v.queries}",
        f"neurons set apart: {len(v.dead)} dead, {len(v.invisible)} invisible, "
        f"{len(v.unmatched_truth)} truth unmatched, {len(v.unmatched_recovered)} recovered unmatched",
    ]
    for kind, notes in (
        ("dead", v.dead),
        ("invisible", v.invisible),
        ("truth unmatched", v.unmatched_truth),
        ("recovered unmatched", v.unmatched_recovered),
    ):
        lines += [f"  {kind}: W{n.layer + 1} neuron {n.index}: {n.reason}" for n in notes]
    return "\n".join(lines)


def verdict(v: Verification) -> str:
    """One line: functionally equivalent or not, at the stated tolerance."""
    tolerance = f"tolerance 2^{v.delta_threshold_log2:.1f} = 2^-20 * max(1, max |f|)"
    if v.delta == 0:
        return f"functionally equivalent: no sampled input differs by more than the {tolerance}"
    return (
        f"NOT functionally equivalent: {v.delta:.2%} of the sampled inputs (delta = {v.delta:.4g}) "
        f"differ by more than the {tolerance}"
    )


@cli.command("verify")
@click.argument("recovered", type=click.Path(path_type=Path))
@click.argument("truth", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=4096,
    show_default=True,
    help="Inputs per sampling distribution.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Sampling seed."
)
@click.option(
    "--sparse-probability",
    type=FiniteRange(0, 1, min_open=True),
    default=None,
    help="Also sample the toy model's sparse inputs (each feature present with this probability).",
)
@click.option(
    "--queries",
    type=click.IntRange(min=0),
    default=None,
    help="Queries the extraction spent, to report alongside.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the JSON figures to this file.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def verify_cmd(
    recovered: Path,
    truth: Path,
    as_json: bool,
    samples: int,
    seed: int,
    sparse_probability: float | None,
    queries: int | None,
    out: Path | None,
    overwrite: bool,
) -> None:
    """Compare a RECOVERED net with the TRUTH (safetensors or ONNX): weight error, functional
    error, neurons set apart.

    Exit status 0 when the two nets are functionally equivalent at the stated tolerance
    (delta = 0: no sampled input's error exceeds 2^-20 * max(1, max |f|)), 1 when they
    are not, 2 on a usage error.
    """
    if out is not None:
        check_out_file(out, overwrite)
    rec_net, true_net = load_net(recovered), load_net(truth)
    # Each sampled input goes through both nets, every layer's activations held at once.
    widths = sum(rec_net.dims) + sum(true_net.dims)
    check_fits(
        8.0 * 4 * samples * widths, f"--samples {samples:,} through both nets", "lower --samples"
    )
    same_io = (rec_net.input_dim, rec_net.output_dim) == (true_net.input_dim, true_net.output_dim)
    if same_io and rec_net.n_hidden_layers != true_net.n_hidden_layers:
        # Two nets of different depths are an answer (they differ), not a usage error.
        click.echo(
            f"not equivalent: the nets have different depths: recovered {rec_net.describe()}, "
            f"truth {true_net.describe()}"
        )
        raise click.exceptions.Exit(1)
    extra: dict[str, object] = {}
    if true_net.head != "identity" and rec_net.head == true_net.head:
        # Classifiers: the logits compared after removing a softmax's common shift.
        cv = verify_classifier(rec_net, true_net, n_samples=samples, seed=seed, queries=queries)
        result, extra = cv.logits, {"classifier": cv.to_json()}
    else:
        result = verify(
            rec_net,
            true_net,
            n_samples=samples,
            seed=seed,
            sparse_probability=sparse_probability,
            queries=queries,
        )
    figures = {**result.to_json(), **extra}
    if out is not None:
        write_json(out, figures)
    text = render(result)
    if extra:
        c = cv.to_json()
        text += f"\n\n{true_net.head} classifier: compared {c['weights_compared']}\n" + "\n".join(
            f"  {name:<12} probabilities {fmt_log2(c['probability_error_log2'][name])}, "
            f"same class {c['argmax_agreement'][name]:.2%}"
            for name in c["argmax_agreement"]
        )
    click.echo(dumps_json(figures).rstrip("\n") if as_json else text)
    click.echo(verdict(result), err=as_json)
    if result.delta > 0:
        raise click.exceptions.Exit(1)
