"""Running a grid into a sweep folder, resuming where an interrupted sweep stopped.

The folder::

    DIR/sweep.json                 the grid and its points (id, folder name, axis values)
    DIR/points/NAME-ID/result.json the point's record, written last
    DIR/points/NAME-ID/...         its artefacts (a toy run folder; or recovered net, extraction.json)

A point's folder is filled beside its final place and renamed into it in one step, so a
point is finished exactly when ``result.json`` is there; a sweep run again skips those
points and runs the rest. A lock keeps two sweeps from writing one folder at once.
"""

from __future__ import annotations

import fcntl
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glassbox.errors import GlassboxError
from glassbox.io import check_writable, read_json, staged_dir, write_json
from glassbox.sweep.executors import InlineExecutor, Pool
from glassbox.sweep.grid import Grid
from glassbox.sweep.jobs import PointResult, run_point
from glassbox.sweep.point import Point

SWEEP, POINTS, RESULT, LOCK = "sweep.json", "points", "result.json", ".sweep.lock"
FORMAT, FORMAT_VERSION = "glassbox.sweep", "1"


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep did: points in the grid, run now, found finished, and the failures."""

    total: int
    ran: int
    skipped: int
    failed: tuple[str, ...]
    seconds: float


def point_dir(out: Path, point: Point) -> Path:
    """The folder of ``point`` in the sweep folder ``out``."""
    return out / POINTS / point.name


def is_finished(out: Path, point: Point) -> bool:
    """Whether ``point``'s result.json is in place (it is written last, atomically)."""
    return (point_dir(out, point) / RESULT).is_file()


def check_folder(out: Path, grid: Grid) -> None:
    """Refuse an ``out`` that is a file, a non-empty non-sweep folder, another job's sweep, or unwritable."""
    if out.exists() and not out.is_dir():
        raise GlassboxError(f"--out {out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not (out / SWEEP).is_file():
            raise GlassboxError(
                f"--out {out} is not empty and holds no {SWEEP}, so it is not a sweep folder; "
                "choose another --out"
            )
        job = read_json(out / SWEEP).get("job")
        if job != grid.job:
            raise GlassboxError(
                f"--out {out} holds a {job} sweep and this grid is {grid.job}; choose another --out"
            )
    check_writable(out)


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GlassboxError(
                f"another glassbox sweep is writing {out}; wait for it or choose another --out"
            ) from None
        yield  # the lock goes with the file handle, also when the process is killed


def write_point(out: Path, point: Point, result: PointResult) -> Path:
    """Write a finished point's files, then its result.json, and move the folder into place."""
    target = point_dir(out, point)
    with staged_dir(target, overwrite=False) as tmp:
        for name, data in result.files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        write_json(tmp / RESULT, result.record)
    return target


def _remove_leftovers(out: Path) -> None:
    """Half-filled point folders of a killed sweep (``.NAME.XXXX.tmp``): never finished, so redone."""
    for stale in (out / POINTS).glob(".*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)


def run_sweep(
    grid: Grid, out: str | Path, pool: Pool | None = None, progress: bool = False
) -> SweepOutcome:
    """Run every unfinished point of ``grid`` on ``pool`` (default: this process) into ``out``."""
    from tqdm import tqdm

    out = Path(out)
    points = grid.points()
    check_folder(out, grid)
    pool = pool or Pool(InlineExecutor(), 1, "this process")
    start = time.perf_counter()
    with _locked(out):
        write_json(
            out / SWEEP,
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                **grid.to_json(),
                "points": [{"id": p.id, "name": p.name, "axes": dict(p.axes)} for p in points],
            },
        )
        (out / POINTS).mkdir(exist_ok=True)
        _remove_leftovers(out)
        pending = [p for p in points if not is_finished(out, p)]
        bar = tqdm(
            total=len(points),
            initial=len(points) - len(pending),
            disable=not progress,
            file=sys.stderr,
            desc=f"sweep {grid.name}",
            unit="point",
        )
        failed: list[str] = []
        queue = iter(pending)
        in_flight: dict[Future[Any], Point] = {}
        try:
            while True:
                while len(in_flight) < pool.window and (p := next(queue, None)) is not None:
                    in_flight[pool.executor.submit(run_point, p)] = p
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    point = in_flight.pop(future)
                    failure = future.exception()
                    if failure is None:
                        write_point(out, point, future.result())
                    else:
                        reason = str(failure).splitlines()[0] if str(failure) else ""
                        failed.append(f"point {point.name}: {type(failure).__name__}: {reason}")
                    bar.update(1)
        finally:
            for future in in_flight:
                future.cancel()
            bar.close()
    return SweepOutcome(
        total=len(points),
        ran=len(pending) - len(failed),
        skipped=len(points) - len(pending),
        failed=tuple(failed),
        seconds=time.perf_counter() - start,
    )


def load_sweep(folder: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A sweep folder's sweep.json and the records of its finished points, in grid order."""
    root = Path(folder)
    if not (root / SWEEP).is_file():
        raise GlassboxError(
            f"{root} is not a sweep folder (no {SWEEP}); make one with `glassbox sweep`"
        )
    sweep = read_json(root / SWEEP)
    records = []
    for entry in sweep.get("points", []):
        path = root / POINTS / entry["name"] / RESULT
        if path.is_file():
            records.append(read_json(path))
    return sweep, records
