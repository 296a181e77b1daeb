"""The attack's progress bar (the layer being recovered) and its peak memory."""

from __future__ import annotations

import sys
from typing import Any

from glassbox.oracle.core import Oracle


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    try:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kib / 1024.0 if sys.platform != "darwin" else kib / 2**20
    except ImportError:  # not on Unix: current RSS is the best psutil offers
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20


class Progress:
    """A stderr progress display: which layer is being recovered, and the queries so far."""

    def __init__(self, enabled: bool, oracle: Oracle) -> None:
        self.oracle = oracle
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=None, desc="extract", unit=" layer", file=sys.stderr)

    def layer(self, depth: int) -> None:
        """Start showing layer ``depth`` (0: the self-check)."""
        if self.bar is not None:
            self.bar.set_description(
                "extract: self-check" if depth == 0 else f"extract: layer {depth}"
            )
            self.bar.set_postfix(queries=self.oracle.queries)

    def note(self, **info: Any) -> None:
        """Update the figures beside the bar."""
        if self.bar is not None:
            self.bar.set_postfix(queries=self.oracle.queries, **info)

    def close(self) -> None:
        """Remove the bar."""
        if self.bar is not None:
            self.bar.close()
