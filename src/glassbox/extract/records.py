"""What the attack is told (``ExtractConfig``) and what it returns (``ExtractionResult``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from glassbox.config import config_to_dict
from glassbox.errors import GlassboxError
from glassbox.extract.kinks import LineKinks
from glassbox.extract.layer import LayerSearch
from glassbox.mlp import ReLUNet, parse_spec


@dataclass(frozen=True)
class ExtractConfig:
    """How to attack; saved beside every result so that a run can be repeated exactly.

    ``architecture`` (e.g. ``"40-20-10-10-1"``) is an optional hint: widths let the search
    of a layer stop as soon as all its neurons are found and name the ones never seen.
    ``None`` for ``output_relu`` and ``output_precision`` means "find out from the answers";
    ``None`` for ``max_queries`` means a default that grows with the black box's widths.
    """

    seed: int = 0
    input_scale: float = 1.0
    line_length: float = 4.0
    lines_per_batch: int = 2
    max_lines: int = 96
    patience: int = 8
    max_depth: int = 8
    architecture: str | None = None
    hidden_width: int | None = None
    output_relu: bool | None = None
    output_precision: float | None = None
    check_samples: int = 1024
    check_tolerance_log2: float | None = None
    max_batch_rows: int = 8192
    max_queries: int | None = None

    def __post_init__(self) -> None:
        if not (self.input_scale > 0 and self.line_length > 0):
            raise GlassboxError("input_scale and line_length must be positive")
        if min(self.lines_per_batch, self.max_lines, self.patience, self.max_depth) < 1:
            raise GlassboxError("lines_per_batch, max_lines, patience, max_depth must be >= 1")
        if self.max_queries is not None and self.max_queries < 1:
            raise GlassboxError(f"max_queries must be >= 1, got {self.max_queries}")
        if self.check_samples < 1 or self.max_batch_rows < 16:
            raise GlassboxError("check_samples must be >= 1 and max_batch_rows >= 16")
        if self.architecture is not None:
            dims, _ = parse_spec(self.architecture)
            if len(dims) < 3:
                raise GlassboxError(
                    f"architecture {self.architecture!r} needs at least one hidden layer, "
                    "e.g. 10-20-1"
                )

    def widths(self) -> list[int] | None:
        """Hidden widths from the hint, if any."""
        if self.architecture is not None:
            return parse_spec(self.architecture)[0][1:-1]
        return [self.hidden_width] if self.hidden_width is not None else None


@dataclass(frozen=True, eq=False)
class ExtractionResult:
    """What the attack recovered, what it cost, and the evidence for every neuron."""

    net: ReLUNet | None
    success: bool
    message: str
    queries: int
    queries_by_phase: dict[str, int]
    seconds: float
    peak_rss_mb: float
    config: ExtractConfig
    architecture: str | None = None
    layers: tuple[dict[str, Any], ...] = ()
    lines: int = 0
    invisible: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    check: dict[str, float] = field(default_factory=dict)
    line: LineKinks | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    # BLAS threads the run used (a function of the black box's widths or --threads).
    threads: int = 1

    def to_json(self) -> dict[str, Any]:
        """The figures as a JSON object (the net itself is saved separately)."""
        return {
            "success": self.success,
            "message": self.message,
            "architecture": self.architecture,
            "queries": self.queries,
            "queries_log2": math.log2(self.queries) if self.queries else None,
            "queries_by_phase": self.queries_by_phase,
            "seconds": self.seconds,
            "peak_rss_mb": self.peak_rss_mb,
            "threads": self.threads,
            "net": self.net.describe() if self.net is not None else None,
            "layers": list(self.layers),
            "lines": self.lines,
            "invisible": list(self.invisible),
            "notes": list(self.notes),
            "check": self.check,
            "line": self.line.to_json() if self.line is not None else None,
            "answers": self.answers,
            "config": config_to_dict(self.config),
        }


def layer_record(depth: int, search: LayerSearch) -> dict[str, Any]:
    """The per-layer record (``extraction.json``'s ``layers``), before signs are known."""
    return {
        "layer": depth,
        "neurons": len(search.neurons),
        "lines": search.lines,
        "kinks": search.kinks,
        "deeper_kinks_set_aside": search.deeper,
        "kinks_without_signature": len(search.unexplained),
        "incomplete_rows": sum(not n.complete for n in search.neurons),
        "rank_deficient_witnesses": sum(n.rank_deficient for n in search.neurons),
        "membership_rejected": [t.to_json() for t in search.rejected],
        "membership_marginal": search.marginal,
        "_points": [n.witnesses[0].x for n in search.neurons],
        "neuron_evidence": [
            {
                "witnesses": len(n.witnesses),
                "rank_deficient_witnesses": n.rank_deficient,
                "known_inputs": int(np.sum(n.known)),
                "error_bar": n.error,
                "flat_checks": [n.flat_checks, n.flat_failures],
                # Layer 1 has no prefix to test membership through (flatness decides there).
                "membership": n.tally.to_json() if depth > 1 else None,
            }
            for n in search.neurons
        ],
    }
