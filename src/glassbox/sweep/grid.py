"""Grids: a TOML file naming the job kind, the fixed settings and the axes; expanded into points.

A grid file::

    job = "train"                # or "extract"
    name = "abs-sparsity"        # optional; names the sweep in messages and figures

    [fixed]                      # settings every point shares
    n_features = 100
    steps = 10000

    [axes]                       # settings to vary: every combination is a point
    sparsity = [0.0, 0.9, 0.99]
    seed = [0, 1, 2]

``[[axes]]`` (an array of tables) gives several products whose points are pooled, for
grids that are not one full product (e.g. a float32 row for one net only).

Axes that are *instance-batchable* do not multiply points: their values become the
batched instance dimension of one run. For ``train`` that is ``sparsity``: each point
trains all its sparsity values as instances of one batched PyTorch run (one process),
so the grid above is 3 points (one per seed) of 3 instances each. Every other axis
(sizes, seeds, learning rates) changes the run and makes separate points.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glassbox.errors import GlassboxError
from glassbox.sweep.jobs import build_config, job_keys
from glassbox.sweep.point import Point, make_point

JOBS = ("train", "extract")
#: Axes whose values are the batched instance dimension of one run, per job kind.
BATCHED: dict[str, tuple[str, ...]] = {"train": ("sparsity",), "extract": ()}
TOP_KEYS = ("job", "name", "description", "fixed", "axes")
#: Settings whose one value is a list (per feature, per sparsity), never an axis by --set.
VECTORS = ("importance", "lr_per_config")


@dataclass(frozen=True, eq=False)
class Grid:
    """A parsed grid: job kind, fixed settings, and one or more products of axes."""

    job: str
    name: str
    fixed: dict[str, Any]
    axes: tuple[dict[str, list[Any]], ...]

    def to_json(self) -> dict[str, Any]:
        """The grid as plain JSON (saved in the sweep folder's sweep.json)."""
        return {"job": self.job, "name": self.name, "fixed": self.fixed, "axes": list(self.axes)}

    def points(self) -> list[Point]:
        """Every point of the grid, in grid order, duplicates (same config) dropped."""
        batched = BATCHED[self.job]
        seen: dict[str, Point] = {}
        for block in self.axes:
            varied = [k for k in block if k not in batched]
            folded = {k: v for k, v in block.items() if k in batched}
            for values in itertools.product(*(block[k] for k in varied)):
                axes = tuple(zip(varied, values, strict=True))
                settings = {**self.fixed, **folded, **dict(axes)}
                try:
                    config = build_config(self.job, settings)
                except (GlassboxError, TypeError, ValueError) as exc:
                    where = ", ".join(f"{k}={v}" for k, v in axes) or "fixed settings"
                    raise GlassboxError(f"grid {self.name}, point {where}: {exc}") from None
                point = make_point(self.job, config, axes)
                seen.setdefault(point.id, point)
        return list(seen.values())


def parse_value(text: str) -> Any:
    """A ``--set`` value as TOML reads it (``3``, ``1e-3``, ``[0, 0.9]``, ``"paper"``); else the bare text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def load_grid(path: str | Path, overrides: dict[str, Any] | None = None) -> Grid:
    """Read and check a grid file; ``overrides`` (from ``--set``) replace fixed settings or axes."""
    p = Path(path)
    if not p.is_file():
        raise GlassboxError(f"{p}: no such grid file")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GlassboxError(f"{p}: not valid TOML ({message})") from None
    return parse_grid(data, p.stem, overrides)


def parse_grid(data: dict[str, Any], default_name: str, overrides: dict[str, Any] | None) -> Grid:
    """Check a grid's parsed TOML (see the module docstring) and apply ``overrides``."""
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise GlassboxError(
            f"grid: unknown top-level key(s) {', '.join(unknown)}; a grid has {', '.join(TOP_KEYS)}"
        )
    job = data.get("job")
    if job not in JOBS:
        raise GlassboxError(f'grid: unknown job kind {job!r}; set job = "train" or "extract"')
    keys = job_keys(job)
    fixed = data.get("fixed", {})
    raw_axes = data.get("axes", [{}])
    blocks = [raw_axes] if isinstance(raw_axes, dict) else raw_axes
    if not isinstance(fixed, dict) or not isinstance(blocks, list):
        raise GlassboxError("grid: [fixed] and [axes] must be tables")
    fixed = dict(fixed)  # overrides edit this copy, never the caller's table
    axes: list[dict[str, list[Any]]] = []
    for block in blocks:
        if not isinstance(block, dict):
            raise GlassboxError("grid: each [[axes]] entry must be a table")
        for name, values in block.items():
            if not isinstance(values, list) or not values:
                raise GlassboxError(
                    f"grid: axis {name} must be a non-empty list of values, got {values!r}"
                )
        axes.append(dict(block))
    for name in [*fixed, *(k for b in axes for k in b), *(overrides or {})]:
        if name not in keys:
            raise GlassboxError(
                f"grid: unknown setting or axis {name!r} for a {job} grid; "
                f"valid: {', '.join(sorted(keys))}"
            )
    both = sorted(set(fixed) & {k for b in axes for k in b})
    if both:
        raise GlassboxError(f"grid: {', '.join(both)} both fixed and an axis; keep one")
    # An override of an axis replaces its values (a list) or pins it (one value); a list
    # for a fixed setting makes it an axis, except where a list is one value (VECTORS).
    for name, value in (overrides or {}).items():
        holders = [b for b in axes if name in b]
        if not holders and isinstance(value, list) and name not in VECTORS:
            fixed.pop(name, None)
            if not axes:
                axes.append({})
            holders = axes  # a new axis of every block
        for block in holders:
            block[name] = value if isinstance(value, list) else [value]
        if not holders:
            fixed[name] = value
    name = data.get("name", default_name)
    return Grid(job, str(name), fixed, tuple(axes or [{}]))
