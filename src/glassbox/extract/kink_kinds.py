"""What bent at a kink: which outputs, and whether a hidden neuron or an output ReLU did it."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

HIDDEN = "hidden"
OUTPUT_RELU = "output-relu"


def classify(
    slope_left: Array, slope_right: Array, value: Array, slope_err: Array, tol: float
) -> tuple[BoolArray, tuple[str, ...]]:
    """Which outputs bend at each kink, and whether it is a hidden or an output-ReLU kink.

    An output ReLU bends exactly one coordinate, which is zero (value and slope) on one
    side; a hidden neuron bends every active output that depends on it.
    """
    # A slope change is real when it is well above what rounding does to the two slopes.
    changed = np.abs(slope_right - slope_left) > 4 * slope_err[:, None]
    kinds = []
    for k in range(value.shape[0]):
        idx = np.flatnonzero(changed[k])
        is_output = False
        if idx.size == 1:
            j = idx[0]
            flat_left = slope_left[k, j] == 0.0
            flat_right = slope_right[k, j] == 0.0
            is_output = abs(value[k, j]) <= 8 * tol and (flat_left or flat_right)
        kinds.append(OUTPUT_RELU if is_output else HIDDEN)
    return changed, tuple(kinds)
