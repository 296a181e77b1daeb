"""``line.json``: the attack's first line with every queried point and kink, so the line plot can be redrawn.

``extraction.json`` keeps only the kinks of the line (:meth:`LineKinks.to_json`); this file
keeps all of it (the queried points too), for ``glassbox report`` to rebuild a report.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from glassbox.errors import GlassboxError
from glassbox.extract.kinks import LineKinks

LINE = "line.json"


def line_to_json(line: LineKinks) -> dict[str, Any]:
    """Every field of the line, as JSON-ready values (arrays are written as lists by write_json)."""
    return {f.name: getattr(line, f.name) for f in dataclasses.fields(line)}


def line_from_json(data: Any) -> LineKinks:
    """The line back from :func:`line_to_json`'s object; a wrong shape is a one-line error."""
    names = {f.name for f in dataclasses.fields(LineKinks)}
    if isinstance(data, dict):
        data = {"layer": [], **data}  # runs written before kinks carried their layer
    if not isinstance(data, dict) or set(data) != names:
        raise GlassboxError(f"{LINE}: expected an object with keys {', '.join(sorted(names))}")
    values: dict[str, Any] = {
        k: np.asarray(v, dtype=np.float64)
        for k, v in data.items()
        if k not in ("kind", "changed", "layer")
    }
    values["layer"] = tuple(int(v) for v in data["layer"])
    values["changed"] = np.asarray(data["changed"], dtype=bool).reshape(len(data["t"]), -1)
    values["kind"] = tuple(data["kind"])
    values.update({k: float(data[k]) for k in ("t_lo", "t_hi", "tolerance")})
    values["unresolved"] = int(data["unresolved"])
    return LineKinks(**values)
