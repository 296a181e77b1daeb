"""Output-layer columns read from one kink's jump vector across the k outputs.

Along a line ``x0 + t u`` a last-hidden-layer neuron ``z = w . h(x) + b`` adds
``A_j ReLU(z)`` to the outputs. Where the line crosses its plane the outputs' slopes
jump by ``A_j (w . J u)`` on the side that turns it on, which is ``A_j |w . J u|``
whichever way the line crosses (``J`` the prefix's local map, the identity for one
hidden layer). So one kink's k-vector of slope jumps gives the neuron's whole output
column, for the row's scale and *without its sign*: ``A_j = jump / |w . J u|``. With
k outputs that is k weights for the price of the kink the search found anyway.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.kinks import LineKinks
from glassbox.extract.prefix import Prefix

Array = NDArray[np.float64]


def output_column(line: LineKinks, k: int, theta: Array, prefix: Prefix) -> Array | None:
    """Output column of the neuron ``theta = (w, b)`` (at ``theta``'s scale) from kink ``k`` of ``line``.

    None when the line runs along the plane (no crossing to read a jump from).
    """
    x = line.point(float(line.t[k]))
    J, _ = prefix.local_map(x)
    crossing = abs(float(theta[:-1] @ (J @ line.d)))
    if crossing == 0.0:
        return None
    return np.asarray((line.slope_right[k] - line.slope_left[k]) / crossing, dtype=np.float64)
