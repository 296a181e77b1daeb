"""The whole extraction of a ReLU net of any depth, from queries alone: a loop over layers.

For layer ``i`` = 1, 2, ...: the recovered prefix (layers ``1..i-1``, signs known) gives
every earlier neuron's state at no query cost; the layer's neurons are found through it
(``layer.py``); then one linear fit says whether this was the last hidden layer, and if
so gives its signs and the output layer at once (``signs/last_layer.py``). If not, the
neuron wiggle gives the layer's signs (``signs/wiggle.py``), the layer joins the prefix,
and the loop (``loop.py``) goes on. Depth and widths are discovered, not given. ``success`` is the verdict of the
self-check (``check.py``) and nothing else.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.loop import LayerLoop
from glassbox.extract.progress import Progress, peak_rss_mb
from glassbox.extract.records import ExtractConfig, ExtractionResult
from glassbox.extract.threads import attack_threads, blas_threads, check_threads
from glassbox.oracle.core import (
    NonFiniteAnswer,
    Oracle,
    QueryBudgetExceeded,
    averaged,
    finite_answers,
    limited,
    row_capped,
)
from glassbox.oracle.probe import AnswerProfile, profile_oracle

Array = NDArray[np.float64]


def extract(
    oracle: Oracle,
    config: ExtractConfig | None = None,
    progress: bool = False,
    threads: int | None = None,
) -> ExtractionResult:
    """Recover a ReLU net of any depth from ``oracle``'s answers alone.

    ``threads`` sets the BLAS threads of the run (default: :func:`attack_threads` of the
    black box's widths, never of the machine's load).
    """
    config = config or ExtractConfig()
    check_threads(threads)
    n = threads or attack_threads(oracle.input_dim, oracle.output_dim)
    with blas_threads(n):
        result = _extract(oracle, config, progress)
    return dataclasses.replace(result, threads=n)


def _extract(oracle: Oracle, config: ExtractConfig, progress: bool) -> ExtractionResult:
    start = time.perf_counter()
    box = row_capped(oracle, config.max_batch_rows)
    q0 = box.queries
    with box.phase("probe"):
        try:
            # Its own stream: the attack's draws stay the same whatever the probe asks.
            profile = profile_oracle(
                box, np.random.default_rng([config.seed, 1]), config.input_scale
            )
        except QueryBudgetExceeded as exc:
            spent = box.queries - q0
            profile = AnswerProfile("unknown", 1.0, 0.0, queries=spent, stop=f"{exc} (probing)")
    budget = config.max_queries or default_budget(box.input_dim, box.output_dim, profile.repeats)
    work = limited(
        averaged(finite_answers(box), profile.repeats, config.max_batch_rows),
        max(1, budget - (box.queries - q0)),
        per_row=profile.repeats,
    )
    bar = Progress(progress, work)
    run = LayerLoop(work, config, bar, np.random.default_rng(config.seed), profile)
    try:
        if profile.stop is not None:
            run.message = f"stopped after {box.queries - q0} queries: {profile.stop}"
        else:
            run.go()
    except QueryBudgetExceeded as exc:
        run.success = False
        run.message = f"failed: {exc}"
    except NonFiniteAnswer as exc:
        run.success = False
        run.message = f"stopped: {exc}"
    finally:
        bar.close()
    arch = None
    if run.net is not None:
        arch = "-".join(map(str, run.net.dims))
    return ExtractionResult(
        net=run.net,
        success=run.success,
        message=run.message,
        queries=box.queries - q0,
        queries_by_phase=box.queries_by_phase,
        seconds=time.perf_counter() - start,
        peak_rss_mb=peak_rss_mb(),
        config=config,
        architecture=arch,
        layers=tuple(run.layers),
        lines=run.n_lines,
        invisible=tuple(run.invisible),
        notes=tuple(run.notes),
        check=run.check,
        line=run.first_line,
        answers=profile.to_json(),
    )


def default_budget(input_dim: int, output_dim: int, repeats: int = 1) -> int:
    """The query budget when none is given: it grows with the black box's widths (and with
    the repeats averaging takes), so that no target can make the attack ask forever."""
    return min(2**31, repeats * 2**15 * (input_dim + output_dim + 16))
