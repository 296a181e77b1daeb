"""``glassbox train KIND`` and ``glassbox plot DIR``: toy models of superposition.

The toy package needs torch, so it is imported only when a ``train`` subcommand is built
or run: ``glassbox --help`` and ``glassbox train --help`` never load it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from glassbox.cli import cli, show_progress, threads_option
from glassbox.errors import GlassboxError
from glassbox.extras import require

HELP = {
    "abs": "The abs(x) model h = ReLU(W1 x), y' = ReLU(W2 h + b), trained on |x|.",
    "relu-output": "The ReLU output model x' = ReLU(W^T W x + b).",
    "linear": "The linear model x' = W^T W x + b.",
    "relu-hidden": "The ReLU hidden layer model with tied weights: h = ReLU(W x), x' = ReLU(W^T h + b).",
}


def parse_sparsity(text: str) -> tuple[float, ...]:
    """``"0,0.7,0.9"`` -> ``(0.0, 0.7, 0.9)``; anything else is a one-line GlassboxError."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise GlassboxError(
            f"--sparsity {text!r}: expected comma-separated numbers in [0, 1), e.g. 0,0.9,0.99"
        ) from None
    if not values:
        raise GlassboxError("--sparsity: give at least one value")
    return values


#: ToyConfig field -> the flag that sets it, so that messages name what the user typed.
FLAGS = {
    "n_features": "--features",
    "n_hidden": "--neurons",
    "anneal_from": "--anneal-from",
    "anneal_steps": "--anneal-steps",
    "weight_decay": "--weight-decay",
    "init_scale": "--init-scale",
    **{
        name: f"--{name}"
        for name in ("sparsity", "importance", "steps", "batch", "lr", "schedule", "warmup")
    },
    **{name: f"--{name}" for name in ("restarts", "seed", "device")},
}


def flag_names(message: str) -> str:
    """``message`` with ToyConfig field names replaced by their command-line flags.

    Names with an underscore (``n_hidden``) are replaced anywhere; plain words (``steps``)
    only where they open the message or follow "[0, ", as in "steps must be ...".
    """
    joined = "|".join(sorted(FLAGS, key=len, reverse=True))
    message = re.sub(
        rf"\b({joined})\b",
        lambda m: FLAGS[m.group(1)] if "_" in m.group(1) else m.group(1),
        message,
    )
    return re.sub(rf"(^|\[0, )({joined})\b", lambda m: m.group(1) + FLAGS[m.group(2)], message)


def check_memory(config: Any, fix: str) -> None:
    """Refuse a toy config whose training tensors would not fit in memory, before torch starts.

    The count is of the trainer's float32 buffers (a batch of inputs, outputs, gradients and
    masks per instance, the weights with their optimizer state, a loss per step) and the
    float64 feature probabilities: within a small factor of what training holds.
    """
    from glassbox.oracle.targets import check_fits

    n, m, inst = config.n_features, config.n_hidden, config.n_configs * config.restarts
    floats32 = inst * (config.batch * (8 * n + 3 * m) + 4 * n * m + config.steps)
    what = (
        f"training {inst} instance(s) of {n:,} features and {m:,} neurons, batches of "
        f"{config.batch:,} for {config.steps:,} steps,"
    )
    check_fits(4.0 * floats32 + 8.0 * inst * n, what, fix)


class _TrainGroup(click.Group):
    """Builds each ``train KIND`` command on first use, when torch is imported."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(HELP)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in HELP:
            return None
        if cmd_name not in self.commands:
            self.add_command(_train_command(cmd_name))
        return self.commands[cmd_name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, text in HELP.items()])


@cli.group(cls=_TrainGroup)
def train() -> None:
    """Train a toy model of superposition: one instance per sparsity value, all at once."""


def _train_command(model: str) -> click.Command:
    require("torch", f"glassbox train {model}")
    from glassbox.toy.config import DEFAULTS, KERNELS, RECIPES, SCHEDULES

    d = DEFAULTS[model]

    @click.option(
        "--features",
        "n_features",
        type=int,
        default=d["n_features"],
        show_default=True,
        help="Number of features n.",
    )
    @click.option(
        "--neurons",
        "n_hidden",
        type=int,
        default=d["n_hidden"],
        show_default=True,
        help="Hidden neurons (dimensions) m.",
    )
    @click.option(
        "--sparsity",
        default=",".join(f"{s:g}" for s in d["sparsity"]),
        show_default=True,
        help="Sparsities S (probability a feature is zero), comma separated: one instance each.",
    )
    @click.option(
        "--importance",
        type=float,
        default=d["importance"],
        show_default=True,
        help="Importance decay: I_i = importance**i.",
    )
    @click.option("--steps", type=int, default=10_000, show_default=True, help="Training steps.")
    @click.option(
        "--anneal-from",
        type=float,
        default=None,
        help="Density curriculum: every instance starts at feature probability 1-S = this ...",
    )
    @click.option(
        "--anneal-steps",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="... and reaches its own 1-S after this many steps (geometric path).",
    )
    @click.option(
        "--recipe",
        type=click.Choice(RECIPES),
        default="none",
        show_default=True,
        help="paper: lr by sparsity (1e-2 at 1-S >= 0.3 down to 1e-3 at 0.001, geometric) and the "
        "density curriculum from 1-S = 0.3 over the first half; overrides --lr and --anneal-*.",
    )
    @click.option("--batch", type=int, default=1024, show_default=True, help="Samples per step.")
    @click.option(
        "--lr", type=float, default=1e-3, show_default=True, help="Peak learning rate (AdamW)."
    )
    @click.option(
        "--weight-decay", type=float, default=0.01, show_default=True, help="AdamW weight decay."
    )
    @click.option(
        "--schedule",
        type=click.Choice(SCHEDULES),
        default="constant",
        show_default=True,
        help="Learning-rate schedule after warmup.",
    )
    @click.option("--warmup", type=int, default=0, show_default=True, help="Linear warmup steps.")
    @click.option(
        "--restarts",
        type=int,
        default=1,
        show_default=True,
        help="Seeds per sparsity, trained as extra instances; the lowest loss is kept.",
    )
    @click.option(
        "--init-scale",
        type=float,
        default=1.0,
        show_default=True,
        help="Multiplier on the Xavier-normal init.",
    )
    @click.option(
        "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed."
    )
    @threads_option("CPU threads", "1 for small models, else a fixed 2")
    @click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
    @click.option(
        "--kernel",
        type=click.Choice(KERNELS),
        default="auto",
        show_default=True,
        help="Training step: compiled (torch.compile, fused), eager, or auto (compiled for big models).",
    )
    @click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        required=True,
        help="Run directory to create.",
    )
    @click.option("--overwrite", is_flag=True, help="Replace an existing run directory.")
    @click.option(
        "--plots/--no-plots",
        default=True,
        show_default=True,
        help="Draw the figures into OUT/figures.",
    )
    @click.option(
        "--progress/--no-progress",
        default=None,
        help="Progress bar on stderr [default: only when stderr is a terminal].",
    )
    def command(
        sparsity: str,
        out: Path,
        overwrite: bool,
        plots: bool,
        progress: bool | None,
        threads: int | None,
        recipe: str,
        **fields: Any,
    ) -> int:
        from glassbox.io import check_out_dir, normalize_modes
        from glassbox.toy.config import default_config, paper_recipe

        try:
            config = default_config(model, sparsity=parse_sparsity(sparsity), **fields)
        except GlassboxError as exc:
            raise GlassboxError(flag_names(str(exc))) from None
        if recipe == "paper":
            config = paper_recipe(config)
        check_out_dir(out, overwrite, marker="config.json")
        check_memory(config, "lower --batch, --features, --steps or the --sparsity values")
        # torch comes in only now: a usage error above answers at once.
        from glassbox.toy.run import save_run
        from glassbox.toy.run_figures import FigureError
        from glassbox.toy.train import train as run_training

        run = run_training(config, progress=show_progress(progress), threads=threads)
        try:
            save_run(run, out, plots=plots, overwrite=overwrite)
        except FigureError as exc:  # the run is saved; a figure is missing
            normalize_modes(out)
            click.echo(f"glassbox: error: {exc}", err=True)
            return 1
        normalize_modes(out)
        click.echo(f"wrote {out}")
        _print_table(run)
        return 0

    command.__doc__ = HELP[model]
    return click.command(model)(command)


def _print_table(run: Any) -> None:
    hidden = run.config.kind.hidden_relu
    head = "inst  1-S       final_loss  vs_const  " + (
        "mono poly untr dead  computed  pair redun 1sign super none  feat/neuron"
        if hidden
        else "D*     represented"
    )
    click.echo(head)
    for i in range(run.n_instances):
        s = run.summary(i)
        loss = run.metrics["final_loss"][i]
        base = run.baseline_loss()[i]
        row = f"{i:>4}  {1 - run.sparsity(i):<8.4g}  {loss:<10.4g}  {loss / base:<8.3g}  "
        if hidden:
            f = s["features"]
            row += (
                f"{s['monosemantic']:>4} {s['polysemantic']:>4} {s['untrained']:>4} {s['dead']:>4}  "
                f"{s['features_computed']:>8}  "
                f"{f['pair']:>4} {f['redundant']:>5} {f['one_sign']:>5} {f['superposition']:>5} "
                f"{f['not_represented']:>4}  {s['features_per_neuron_mean']:>11.2f}"
            )
        else:
            row += f"{s['dimensionality']:<6.3f} {s['features_represented']}"
        click.echo(row)


@cli.command("plot")
@click.argument("directory", type=click.Path(path_type=Path))
def plot(directory: Path) -> None:
    """Redraw a run directory's figures and analysis.json from its saved weights."""
    require("torch", "glassbox plot")
    if not (directory / "config.json").is_file():  # before torch: a wrong folder answers at once
        what = (
            "not a glassbox toy run"
            if directory.is_dir()
            else "a file, not a run directory"
            if directory.exists()
            else "no such run directory"
        )
        raise GlassboxError(f"{directory}: {what} (no config.json); make one with `glassbox train`")
    from glassbox.toy.run import load_run, write_analysis
    from glassbox.toy.run_figures import write_run_figures

    run = load_run(directory)
    write_analysis(run, directory)
    files = write_run_figures(run, directory / "figures")
    click.echo(f"wrote {len(files)} figure files under {directory / 'figures'}")
    _print_table(run)
