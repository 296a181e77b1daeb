"""``glassbox sweep``: grids, points, resuming a killed sweep, process pools, sweep-plot, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli
from glassbox.errors import GlassboxError
from glassbox.sweep import load_grid
from glassbox.sweep.executors import InlineExecutor, open_executor, process_pool
from glassbox.sweep.grid import parse_value
from glassbox.sweep.jobs import ExtractJob, defend, phase_counts
from sweep_helpers import TINY_EXTRACT, results, train_grid, write_grid

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_sparsity_is_the_instance_dimension_and_other_axes_make_points(tmp_path: Path) -> None:
    grid = load_grid(train_grid(tmp_path, seeds=[0, 1, 2]))
    points = grid.points()
    assert len(points) == 3  # one batched run per seed, not 3 x 3
    assert all(p.config.sparsity == (0.0, 0.7, 0.9) for p in points)
    assert [dict(p.axes) for p in points] == [{"seed": 0}, {"seed": 1}, {"seed": 2}]
    assert len({p.id for p in points}) == 3
    # The id names the config: the same settings give the same id, whatever the grid.
    again = load_grid(train_grid(tmp_path, seeds=[2])).points()
    assert again[0].id == points[2].id and again[0].name == points[2].name


def test_extract_grid_pools_its_axes_blocks_and_set_overrides_axes(tmp_path: Path) -> None:
    path = write_grid(tmp_path, "e.toml", TINY_EXTRACT)
    points = load_grid(path).points()
    assert len(points) == 2 * 2 + 2
    assert {p.config.defence for p in points} == {"float64", "float32", "round:6"}
    assert isinstance(points[0].config, ExtractJob)
    pinned = load_grid(path, {"seed": 1, "budget": 5000}).points()
    assert {p.config.seed for p in pinned} == {1} and {p.config.budget for p in pinned} == {5000}
    # A list for a fixed setting makes it an axis.
    widened = load_grid(path, {"budget": [100, 200]}).points()
    assert len(widened) == 2 * 6 and {p.config.budget for p in widened} == {100, 200}
    assert parse_value("[0, 1]") == [0, 1] and parse_value("1e-3") == 1e-3
    assert parse_value("paper") == "paper"


def test_paper_recipe_in_a_grid_is_the_cli_recipe(tmp_path: Path) -> None:
    from glassbox.toy.config import default_config, paper_recipe

    text = (
        'job = "train"\n[fixed]\nrecipe = "paper"\nsteps = 1000\n[axes]\nsparsity = [0.0, 0.99]\n'
    )
    (point,) = load_grid(write_grid(tmp_path, "p.toml", text)).points()
    assert point.config == paper_recipe(default_config("abs", sparsity=(0.0, 0.99), steps=1000))
    assert point.config.lr_per_config == (1e-2, pytest.approx(2.5e-3, rel=0.05))


def test_defences_wrap_the_oracle_and_bad_ones_are_refused() -> None:
    import numpy as np

    from glassbox.mlp import ReLUNet
    from glassbox.oracle.core import net_oracle

    net = ReLUNet.random("3-4-1", seed=0)
    x = np.random.default_rng(0).normal(size=(5, 3))
    exact = net.forward(x)
    for defence, check in (
        ("float64", lambda y: np.array_equal(y, exact)),
        ("float32", lambda y: np.array_equal(y, exact.astype(np.float32).astype(np.float64))),
        ("round:4", lambda y: np.allclose(y, exact, rtol=1e-3) and not np.array_equal(y, exact)),
        ("noise:1e-6", lambda y: 0 < np.abs(y - exact).max() < 1e-4),
    ):
        oracle = defend(net_oracle(net), defence, seed=0)
        assert oracle is not None and check(oracle.query(x)), defence
    for bad in ("round:0", "round:x", "noise:-1", "float16", "float64:3"):
        with pytest.raises(GlassboxError, match="defence"):
            ExtractJob(defence=bad)


def test_phase_counts_of_tied_and_abs_instances() -> None:
    tied = {"feature_norms": [1.0, 1.0, 0.9, 0.1], "superposition": [0.0, 0.9, 0.9, 0.0]}
    assert phase_counts(tied) == {"dedicated": 1, "superposition": 2, "not_represented": 1}
    classes = {"pair": 2, "redundant": 1, "one_sign": 1, "superposition": 3, "not_represented": 4}
    assert phase_counts({"features": classes}) == {
        "dedicated": 3,
        "superposition": 3,
        "not_represented": 5,
    }


def test_a_process_pool_gives_the_same_points_as_this_process(tmp_path: Path) -> None:
    grid = train_grid(tmp_path, seeds=[0, 1])
    assert run_cli("sweep", str(grid), "--out", str(tmp_path / "a"))[0] == 0
    pool = ("--workers", "2", "--threads", "1")  # torch's threads in this process: 1 (small model)
    code, out, err = run_cli("sweep", str(grid), "--out", str(tmp_path / "b"), *pool)
    assert code == 0, err
    assert "2 local processes, 1 thread(s) each" in err
    a, b = results(tmp_path / "a"), results(tmp_path / "b")
    assert len(a) == 2 and a == b
    # Each pool worker ran with the thread count it was given.
    record = json.loads(next((tmp_path / "b" / "points").glob("*/result.json")).read_text())
    assert record["timing"]["threads"] == 1


def test_pool_workers_get_one_thread_whatever_the_load(monkeypatch) -> None:
    from glassbox.sweep import executors

    for load in (0.0, 100.0):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert executors.default_threads(1) == executors.default_threads(4) == 1
    monkeypatch.undo()
    with pytest.raises(GlassboxError, match="--workers must be at least 1"):
        executors.default_threads(0)
    before = os.environ.get("OMP_NUM_THREADS")
    pool = process_pool(1, threads=2)
    try:
        assert pool.executor.submit(os.getenv, "OPENBLAS_NUM_THREADS").result() == "2"
    finally:
        pool.executor.shutdown()
    assert os.environ.get("OMP_NUM_THREADS") == before  # this process's setting is restored
    with open_executor(workers=1, threads=3) as pool:
        assert pool.executor.submit(os.getenv, "MKL_NUM_THREADS").result() == "3"
    assert isinstance(InlineExecutor().submit(int, "3").result(), int)


def test_an_extract_sweep_and_its_table(tmp_path: Path) -> None:
    grid = write_grid(tmp_path, "e.toml", TINY_EXTRACT)
    out = tmp_path / "sweep"
    code, stdout, err = run_cli("sweep", str(grid), "--out", str(out), "--no-progress")
    assert code == 0, err
    assert "6 points, 6 run, 0 already finished, 0 failed" in stdout
    point = next((out / "points").glob("target=random-6-5-1_seed=0-*"))
    assert {p.name for p in point.iterdir()} == {
        "result.json", "config.json", "extraction.json", "recovered.safetensors",
    }  # fmt: skip
    record = json.loads((point / "result.json").read_text())
    assert record["result"]["success"] is True
    assert record["result"]["max_weight_error_log2"] < -30
    code, table, err = run_cli("sweep-plot", str(out))
    assert code == 0, err
    assert "| random:6-5-1 | float64 | 2 | 2 | 1 |" in table
    # Every row's successes are what its points' result.json say.
    counted: dict[tuple[str, str], list[int]] = {}
    for path in (out / "points").glob("*/result.json"):
        rec = json.loads(path.read_text())
        cell = counted.setdefault((rec["config"]["target"], rec["config"]["defence"]), [0, 0])
        cell[0] += rec["result"]["success"]
        cell[1] += 1
    assert len(counted) == 4
    for (target, defence), (ok, runs) in counted.items():
        assert f"| {target} | {defence} | {ok} | {runs} |" in table
    for name in ("table.md", "table.csv", "extract.png", "extract.svg"):
        assert (out / name).is_file()
    assert (out / "table.csv").read_text().splitlines()[0].startswith("target,defence,ok,runs")


def test_a_train_sweep_draws_the_phase_diagram(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    assert run_cli("sweep", str(train_grid(tmp_path, seeds=[0, 1])), "--out", str(out))[0] == 0
    point = next((out / "points").iterdir())
    # A point folder is a toy run folder: glassbox plot draws it.
    code, _, err = run_cli("plot", str(point))
    assert code == 0, err
    code, table, err = run_cli("sweep-plot", str(out))
    assert code == 0, err
    rows = [line for line in table.splitlines() if line.startswith("| n=6, m=4 |")]
    assert [row.split("|")[2].strip() for row in rows] == ["1", "0.3", "0.1"]
    assert all(row.split("|")[3].strip() == "2" for row in rows)  # two seeds per cell
    for name in ("phase.png", "phase.svg", "loss.png", "summary.md", "summary.csv"):
        assert (out / name).is_file()


def _finished(out: Path) -> list[Path]:
    return sorted((out / "points").glob("*/result.json")) if (out / "points").is_dir() else []


def test_a_killed_sweep_resumes_without_redoing_finished_points(tmp_path: Path) -> None:
    grid = train_grid(tmp_path, seeds=list(range(8)), steps=1500)
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = ["sweep", str(grid), "--out", str(out), "--no-progress"]
    code = f"import sys; from glassbox.cli import main; sys.exit(main({argv!r}))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(_finished(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in _finished(out)}
    assert 2 <= len(before) < 8, "the sweep should be killed part way"

    code_, stdout, err = run_cli(*argv)
    assert code_ == 0, err
    assert f"8 points, {8 - len(before)} run, {len(before)} already finished, 0 failed" in stdout
    for path, stamp in before.items():  # not recomputed, not rewritten
        assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp
    assert not list((out / "points").glob(".*"))  # no half-written folder left

    whole = tmp_path / "whole"
    assert run_cli("sweep", str(grid), "--out", str(whole))[0] == 0
    assert results(out) == results(whole) and len(results(whole)) == 8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('job = "fit"\n', "unknown job kind 'fit'; set job"),
        (
            'job = "train"\n[axes]\nwidth = [1, 2]\n',
            "unknown setting or axis 'width' for a train grid",
        ),
        (
            'job = "extract"\n[fixed]\nsteps = 3\n',
            "unknown setting or axis 'steps' for a extract grid",
        ),
        ('job = "train"\n[axes\n', "not valid TOML"),
        ('job = "train"\nextra = 1\n', "unknown top-level key(s) extra"),
        ('job = "train"\n[axes]\nseed = 3\n', "axis seed must be a non-empty list"),
        ('job = "train"\n[fixed]\nseed = 1\n[axes]\nseed = [1]\n', "seed both fixed and an axis"),
        ('job = "train"\n[axes]\nsteps = [10, -1]\n', "point steps=-1: steps must be a positive"),
        ('job = "train"\n[fixed]\nlr = "fast"\n', "point fixed settings: lr must be a number"),
        ('job = "train"\n[fixed]\nseed = [0, 1]\n', "seed must be an integer, got [0, 1]"),
        ('job = "extract"\n[axes]\nseed = [0.5]\n', "point seed=0.5: seed must be an integer"),
        ('job = "extract"\n[axes]\ntarget = ["random:3-x"]\n', "bad net spec"),
        ('job = "extract"\n[axes]\ntarget = ["toy:3-2"]\n', "bad toy target"),
    ],
)
def test_bad_grids_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    grid = write_grid(tmp_path, "g.toml", text)
    code, stdout, err = run_cli("sweep", str(grid), "--out", str(tmp_path / "out"))
    assert code == 2 and stdout == ""
    assert err.startswith("glassbox: error:") and len(err.strip().splitlines()) == 1, err
    assert message in err
    assert not (tmp_path / "out").exists()


def test_bad_command_lines_are_one_line_errors(tmp_path: Path, monkeypatch) -> None:
    grid = train_grid(tmp_path, seeds=[0])
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("not a sweep")
    cases = [
        (["sweep", str(tmp_path / "nope.toml"), "--out", "x"], "no such grid file"),
        (["sweep", str(grid), "--out", str(notes)], "holds no sweep.json"),
        (["sweep", str(grid), "--out", "x", "--workers", "2", "--dask", "tcp://a:1"], "exclude"),
        (["sweep", str(grid), "--out", "x", "--workers", "0"], "--workers must be at least 1"),
        (["sweep", str(grid), "--out", "x", "--threads", "2"], "give --workers"),
        (["sweep", str(grid), "--out", "x", "--workers", "1", "--threads", "0"], "'--threads'"),
        (["sweep", str(grid), "--out", "x", "--set", "steps"], "expected KEY=VALUE"),
        (["sweep", str(grid), "--out", "x", "--set", "depth=3"], "unknown setting or axis 'depth'"),
        (["sweep-plot", str(notes)], "not a sweep folder"),
    ]
    monkeypatch.chdir(tmp_path)
    for argv, message in cases:
        code, _, err = run_cli(*argv)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert (notes / "mine.txt").read_text() == "not a sweep"
    # An extract grid into a train sweep's folder is refused, not mixed in.
    assert run_cli("sweep", str(grid), "--out", "t")[0] == 0
    code, _, err = run_cli("sweep", str(write_grid(tmp_path, "e.toml", TINY_EXTRACT)), "--out", "t")
    assert code == 2 and "holds a train sweep and this grid is extract" in err


def test_a_failing_point_is_listed_and_the_others_finish(tmp_path: Path) -> None:
    text = 'job = "extract"\n[axes]\ntarget = ["random:4-3-1", "missing.onnx"]\n'
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        "sweep", str(write_grid(tmp_path, "g.toml", text)), "--out", str(out)
    )
    assert code == 1
    assert "2 points, 1 run, 0 already finished, 1 failed" in stdout
    assert "failed: point target=missing.onnx-" in err and "missing.onnx: no such file" in err
    assert len(_finished(out)) == 1


def test_opening_executors_checks_its_arguments() -> None:
    with pytest.raises(GlassboxError, match="exclude"), open_executor(2, "tcp://127.0.0.1:1"):
        pass
    with open_executor() as pool:
        assert pool.window == 1 and pool.executor.submit(sum, [1, 2]).result() == 3


def test_without_dask_the_flag_names_the_extra(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    grid = train_grid(tmp_path, seeds=[0])
    code, _, err = run_cli("sweep", str(grid), "--out", str(tmp_path / "o"), "--dask", "tcp://h:1")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--dask needs distributed, which is not installed: pip install 'glassbox[dask]'" in err
    assert "pip install -e '.[dask]'" in err


def test_the_sweep_commands_register_and_answer_help_without_torch_or_dask(tmp_path: Path) -> None:
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys, contextlib, io\n"
         "sys.modules['torch'] = None\n"
         "from glassbox.cli import main\n"
         "import glassbox.sweep\n"
         "for argv in (['sweep'], ['sweep-plot']):\n"
         "    with contextlib.redirect_stdout(io.StringIO()):\n"
         "        assert main([*argv, '--help']) == 0, argv\n"
         "print(sorted(m for m in ('dask', 'distributed', 'matplotlib') if m in sys.modules))"],
        env={**os.environ, "PYTHONPATH": SRC}, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("name", "points", "first"),
    [
        ("abs_sparsity.toml", 4, {"seed": 0}),
        ("abs_phase.toml", 12, {"n_hidden": 5, "seed": 0}),
        ("extract_suite1.toml", 20 + 10 + 12, {"target": "random:784-32-1", "seed": 0}),
        ("extract_suite2.toml", 70 + 5 + 6, {"target": "random:10-10-10-1", "seed": 0}),
        (
            "weak_oracles.toml",
            2 * 9 * 3,
            {"target": "random:100-32-1", "defence": "float64", "seed": 0},
        ),
    ],
)
def test_the_example_grids_expand(name: str, points: int, first: dict[str, object]) -> None:
    grid = load_grid(Path(__file__).resolve().parents[1] / "examples" / name)
    expanded = grid.points()
    assert len(expanded) == points and dict(expanded[0].axes) == first
    if grid.job == "train":  # the paper recipe: one learning rate per batched sparsity
        assert all(len(p.config.lr_per_config) == p.config.n_configs for p in expanded)


def test_the_progress_bar_counts_points_only_when_asked_or_on_a_terminal(tmp_path: Path) -> None:
    grid = train_grid(tmp_path, seeds=[0, 1])
    _, _, quiet = run_cli("sweep", str(grid), "--out", str(tmp_path / "a"))
    assert "point/s" not in quiet and "2/2" not in quiet  # stderr is not a terminal here
    _, _, drawn = run_cli("sweep", str(grid), "--out", str(tmp_path / "b"), "--progress")
    assert "sweep tiny-train" in drawn and "2/2" in drawn


def test_a_tied_model_grid_reads_its_phases_from_feature_norms(tmp_path: Path) -> None:
    text = (
        'job = "train"\n[fixed]\nmodel = "relu-output"\nsteps = 300\nbatch = 128\n'
        "eval_samples = 1024\n[axes]\nsparsity = [0.0, 0.9]\nn_hidden = [1, 2]\n"
    )
    out = tmp_path / "tied"
    assert run_cli("sweep", str(write_grid(tmp_path, "t.toml", text)), "--out", str(out))[0] == 0
    for path in (out / "points").glob("*/result.json"):
        for inst in json.loads(path.read_text())["result"]["instances"]:
            assert sum(inst["phase"].values()) == 5  # every feature in exactly one phase
    code, table, _ = run_cli("sweep-plot", str(out))
    assert code == 0 and "| n_hidden=1 | 1 |" in table and "| n_hidden=2 | 0.1 |" in table


def test_pool_workers_end_when_their_sweep_is_killed(tmp_path: Path) -> None:
    import psutil

    grid = train_grid(tmp_path, seeds=list(range(8)), steps=1500)
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = [
        "sweep",
        str(grid),
        "--out",
        str(out),
        "--workers",
        "2",
        "--threads",
        "1",
        "--no-progress",
    ]
    code = f"import sys; from glassbox.cli import main; sys.exit(main({argv!r}))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while not _finished(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        children = psutil.Process(proc.pid).children()
        assert len(children) >= 2  # the pool's workers (and multiprocessing's tracker)
        proc.kill()  # the sweep only: its workers are orphaned
        proc.wait(timeout=30)
        gone, alive = psutil.wait_procs(children, timeout=20)
        assert alive == [], "pool workers outlived their sweep"
    finally:
        for child in children:
            if child.is_running():
                child.kill()
    # The sweep resumes on a pool, and ends as an uninterrupted one.
    assert run_cli(*argv)[0] == 0
    assert run_cli("sweep", str(grid), "--out", str(tmp_path / "whole"))[0] == 0
    assert results(out) == results(tmp_path / "whole")


def test_the_extract_figure_has_titles_apart_and_a_labelled_colour_bar_each() -> None:
    from glassbox.sweep.plots import extract_figure

    rows = [
        [t, d, 1, 2, 0.5, 14.2, 0.3, -40.0, -38.0]
        for t in ("random:10-10-10-1", "random:784-32-1", "toy:20-10:0.8")
        for d in ("float64", "float32", "round:8")
    ]
    fig = extract_figure(rows)
    fig.canvas.draw()
    panels = [ax for ax in fig.axes if ax.get_images()]
    bars = [ax for ax in fig.axes if not ax.get_images()]
    assert len(panels) == 3 and len(bars) == 3
    assert all(ax.get_xlabel() for ax in bars)  # each colour bar says what it shows
    titles = [ax.title.get_window_extent() for ax in panels]
    assert all(not a.overlaps(b) for a, b in zip(titles, titles[1:], strict=False))
