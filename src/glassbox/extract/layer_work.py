"""One layer while the loop works on it: its search, rows (signs unknown), record and fit."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.layer import LayerSearch
from glassbox.extract.signs.last_layer import LastLayerFit
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]


@dataclass
class Layer:
    """One layer while the loop works on it: its search, rows (signs unknown), record and fit."""

    depth: int
    hint: int | None
    t0: float
    q0: int
    search: LayerSearch
    theta: Array
    info: dict[str, Any]
    fit: LastLayerFit | None = None
    points: list[list[Array]] = dataclasses.field(default_factory=list)
    signs: Array | None = None

    def anchors(self) -> Array:
        """One witness point per neuron (where the output fit samples around)."""
        return np.array(self.info["_points"])

    def spent(self, oracle: Oracle) -> dict[str, float]:
        """Queries and seconds since the layer's search began."""
        return {"queries": oracle.queries - self.q0, "seconds": time.perf_counter() - self.t0}


def clean_fit(fit: LastLayerFit) -> bool:
    """An exact fit with every sign read cleanly and no +/- pair (pairs are rare; check twice)."""
    return fit.exact and fit.signs is not None and not np.any(fit.signs == 0.0)
