"""Grids of runs (toy models, extraction attacks), in this process, a process pool or on Dask.

- :mod:`glassbox.sweep.grid`: the TOML grid and its points (instance-batchable axes fold
  into one run);
- :mod:`glassbox.sweep.jobs`: ``run_point(point) -> PointResult``, one pure call per point;
- :mod:`glassbox.sweep.executors`: the executors (inline, ``--workers N``, ``--dask ADDRESS``);
- :mod:`glassbox.sweep.runner`: the sweep folder, resuming, progress;
- :mod:`glassbox.sweep.plots`: ``glassbox sweep-plot``'s figures and tables.
"""

from glassbox.sweep.grid import Grid, load_grid
from glassbox.sweep.point import Point
from glassbox.sweep.runner import SweepOutcome, load_sweep, run_sweep

__all__ = ["Grid", "Point", "SweepOutcome", "load_grid", "load_sweep", "run_sweep"]
