"""The main job: train a toy model, attack one instance as a black box, verify, and report.

A demo run directory holds everything needed to rebuild the report::

    config.json            the DemoConfig (repeat the run with ``glassbox demo --config``)
    toy/                   the toy-model run (weights, config, metrics, analysis)
    truth.safetensors      the attacked instance, as a ReLUNet
    recovered.safetensors  what the attack recovered from queries alone
    extraction.json        the attack's figures: queries (by phase), seconds, verdict, ...
    verification.json      the reconstruction held against the truth
    line.json              the first line's queried points and kinks (the line plot)
    report.html            the report, one self-contained file
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.config import config_to_dict, load_config, save_config
from glassbox.demo.boundary import attack
from glassbox.errors import GlassboxError
from glassbox.extract.attack import ExtractConfig, ExtractionResult
from glassbox.io import atomic_path, read_json, staged_dir, write_json
from glassbox.io import check_out_dir as io_check_out_dir
from glassbox.mlp import ReLUNet
from glassbox.report.demo_page import ReportInputs, build_report, summary
from glassbox.report.line_file import line_from_json as _line_from_json
from glassbox.report.line_file import line_to_json as _line_to_json
from glassbox.toy.config import ToyConfig
from glassbox.toy.run import load_run, save_run
from glassbox.toy.train import train
from glassbox.toy.trained import TrainedRun
from glassbox.verify.compare import verify

CONFIG, TOY, TRUTH, RECOVERED = "config.json", "toy", "truth.safetensors", "recovered.safetensors"
EXTRACTION, VERIFICATION, LINE, REPORT = (
    "extraction.json",
    "verification.json",
    "line.json",
    "report.html",
)

#: The default: 20 features in 10 neurons at S = 0.8, where training puts several neurons
#: in superposition; 4 restarts trained as one batch, the lowest loss kept.
DEFAULT_TOY = ToyConfig(
    model="abs",
    n_features=20,
    n_hidden=10,
    sparsity=(0.8,),
    importance=0.8,
    steps=5000,
    restarts=4,
    seed=0,
)
#: The paper's size (100 features, 40 neurons) at 1 - S = 0.03, where the paper shows
#: highly polysemantic neurons for the less important features.
#: Plain training stalls at this sparsity (docs/toy_models.md), so the density curriculum
#: starts at 1 - S = 0.3 and reaches 0.03 after half the steps.
PAPER_TOY = dataclasses.replace(
    DEFAULT_TOY,
    n_features=100,
    n_hidden=40,
    sparsity=(0.97,),
    steps=10_000,
    restarts=2,
    anneal_from=0.3,
    anneal_steps=5_000,
)


@dataclass(frozen=True)
class DemoConfig:
    """One demo run: the toy model to train, which instance to attack, how to attack and verify."""

    toy: ToyConfig = DEFAULT_TOY
    instance: int = 0  # which kept instance (sparsity value) of the toy run is attacked
    attack: ExtractConfig = field(default_factory=ExtractConfig)
    budget: int | None = None  # the oracle's query budget (None: unlimited)
    verify_samples: int = 4096  # per input distribution
    verify_seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.instance < self.toy.n_configs:
            raise GlassboxError(
                f"instance {self.instance} does not exist: the toy config has "
                f"{self.toy.n_configs} sparsity value(s)"
            )
        if self.toy.model != "abs":
            raise GlassboxError(f"the demo attacks the abs(x) model, not {self.toy.model!r}")
        if self.budget is not None and self.budget < 1:
            raise GlassboxError(f"budget must be at least 1 query or null, got {self.budget}")
        if self.verify_samples < 1:
            raise GlassboxError(f"verify_samples must be at least 1, got {self.verify_samples}")


def paper_config() -> DemoConfig:
    """The demo at the paper's size (100 features, 40 neurons)."""
    return DemoConfig(toy=PAPER_TOY)


@dataclass(frozen=True, eq=False)
class DemoResult:
    """What a demo run produced: its directory, report (None when the attack recovered no net) and summary."""

    directory: Path
    report: Path | None
    summary: list[str]
    success: bool
    seconds: float
    message: str = ""  # the attack's own verdict


def default_out_dir(root: str | os.PathLike[str] = "runs") -> Path:
    """Create and return a fresh folder ``root/demo-YYYYMMDD-HHMMSS`` (``-2``, ``-3``, ... if taken).

    The folder is created here, atomically, so two runs started in the same second get
    different folders.
    """
    Path(root).mkdir(parents=True, exist_ok=True)
    base = Path(root) / time.strftime("demo-%Y%m%d-%H%M%S")
    candidate, k = base, 1
    while True:
        try:
            candidate.mkdir()
        except FileExistsError:
            k += 1
            candidate = base.with_name(f"{base.name}-{k}")
            continue
        return candidate


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse an existing non-empty ``out`` unless ``overwrite`` (then it must be a demo run), or an unwritable one."""
    io_check_out_dir(out, overwrite, marker=CONFIG)


Say = Callable[[str], None]


def _say(enabled: bool) -> Say:
    def say(message: str) -> None:
        if enabled:
            print(f"glassbox demo: {message}", file=sys.stderr, flush=True)

    return say


def run_demo(
    config: DemoConfig,
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: bool = True,
    bars: bool | None = None,
    in_process: bool = False,
    threads: int | None = None,
) -> DemoResult:
    """Train, attack one instance through a counting oracle, verify, write the run and its report.

    ``progress`` prints a line per stage on stderr; ``bars`` draws progress bars there
    (default: as ``progress``). Everything is written into a temporary sibling of ``out``
    and moved into place at the end, so a failure never leaves a half-written run. When
    the attack recovers no network (e.g. its budget ran out), the trained model and the
    attack's figures are still written, and the result has ``report=None``. The attack
    reaches the trained net over HTTP, served by a separate process (``in_process``: in
    this process); extraction.json says which (see :mod:`glassbox.demo.boundary`).
    ``threads`` sets the CPU threads of training, the attack and the service (default: each
    by its shapes).
    """
    target = Path(out)
    check_out_dir(target, overwrite)
    say = _say(progress)
    bars = progress if bars is None else bars
    t0 = time.perf_counter()
    toy = config.toy
    say(
        f"[1/4] training {toy.n_configs * toy.restarts} instance(s) of the abs(x) model at once "
        f"({toy.restarts} restart(s) per sparsity, lowest loss kept): {toy.n_features} features, "
        f"{toy.n_hidden} neurons, S = {', '.join(f'{v:g}' for v in 1 - toy.probability().mean(axis=1))}, "
        f"{toy.steps} steps"
    )
    run = train(toy, progress=bars, threads=threads)
    truth = run.instance_net(config.instance)

    kept = int(run.metrics["kept_restart"][config.instance])
    say(
        f"[2/4] attacking the kept network (sparsity S = {run.sparsity(config.instance):g}, "
        f"restart {kept}) through a counting oracle (no weights), "
        + ("in-process" if in_process else "over HTTP")
    )
    result, facts = attack(
        truth,
        config.attack,
        config.budget,
        in_process=in_process,
        progress=bars,
        say=say,
        threads=threads,
    )
    if result.net is None:
        # Keep what was made (the trained model, its truth net, the attack's figures).
        say("[4/4] the attack recovered no network; writing the trained model and its figures")
        with staged_dir(target, overwrite) as tmp:
            _write_run(tmp, config, run, truth, result, None, facts)
        return DemoResult(
            directory=target,
            report=None,
            summary=[],
            success=False,
            seconds=time.perf_counter() - t0,
            message=result.message,
        )

    say("[3/4] verifying the reconstruction against the truth")
    probability = float(toy.probability()[config.instance].mean())
    verification = verify(
        result.net,
        truth,
        n_samples=config.verify_samples,
        seed=config.verify_seed,
        sparse_probability=probability,
        queries=result.queries,
    ).to_json()

    say("[4/4] writing the run directory and report.html")
    with staged_dir(target, overwrite) as tmp:
        _write_run(tmp, config, run, truth, result, verification, facts)
        inputs = load_inputs(tmp)
        (tmp / REPORT).write_text(build_report(inputs, run_dir=target), encoding="utf-8")
    return DemoResult(
        directory=target,
        report=target / REPORT,
        summary=summary(inputs),
        success=result.success,
        seconds=time.perf_counter() - t0,
        message=result.message,
    )


def _write_run(
    folder: Path,
    config: DemoConfig,
    run: TrainedRun,
    truth: ReLUNet,
    result: ExtractionResult,
    verification: dict[str, Any] | None,
    facts: dict[str, Any],
) -> None:
    save_config(config, folder / CONFIG)
    save_run(run, folder / TOY, plots=False)
    truth.save(folder / TRUTH)
    if result.net is not None:
        result.net.save(folder / RECOVERED)
    write_json(folder / EXTRACTION, {**result.to_json(), **facts})
    if verification is not None:
        write_json(folder / VERIFICATION, verification)
    if result.line is not None:
        write_json(folder / LINE, _line_to_json(result.line))


def load_inputs(run_dir: str | os.PathLike[str]) -> ReportInputs:
    """Read a demo run directory into the report's inputs; anything missing is a one-line error."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise GlassboxError(f"{folder}: no such run directory")
    for name in (CONFIG, TOY, TRUTH, EXTRACTION):
        if not (folder / name).exists():
            raise GlassboxError(
                f"{folder} is not a glassbox demo run (no {name}); make one with `glassbox demo`"
            )
    if not (folder / RECOVERED).exists():
        raise GlassboxError(
            f"{folder}: the attack recovered no network in this run, so there is nothing to "
            f"report; its figures are in {folder / EXTRACTION}"
        )
    config = load_config(DemoConfig, folder / CONFIG)
    run = load_run(folder / TOY)
    line = _line_from_json(read_json(folder / LINE)) if (folder / LINE).is_file() else None
    return ReportInputs(
        config=config_to_dict(config),
        toy=run.config,
        instance=config.instance,
        training=run.metrics,
        truth=ReLUNet.load(folder / TRUTH),
        recovered=ReLUNet.load(folder / RECOVERED),
        extraction=read_json(folder / EXTRACTION),
        verification=read_json(folder / VERIFICATION),
        line=line,
    )


def rebuild_report(run_dir: str | os.PathLike[str]) -> Path:
    """Rewrite ``RUN_DIR/report.html`` from the run's saved files."""
    inputs = load_inputs(run_dir)
    path = Path(run_dir) / REPORT
    with atomic_path(path) as tmp:
        tmp.write_text(build_report(inputs, run_dir=Path(run_dir)), encoding="utf-8")
    return path
