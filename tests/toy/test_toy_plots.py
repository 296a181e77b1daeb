"""Figures: superposition colouring, leftovers drawn apart, graph view of chosen features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection, PathCollection, PolyCollection

from glassbox.toy import plots, run_figures
from glassbox.toy.config import default_config
from glassbox.toy.train import train


def polys(ax) -> list[PolyCollection]:
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def test_stack_colours_features_by_superposition() -> None:
    eye = np.eye(3)
    W1, W2 = np.vstack([eye, -eye]), np.hstack([eye, eye])
    ax = plots.plot_neuron_stack(W1, W2)
    faces = polys(ax)[0].get_facecolors()
    assert len(faces) == 6 and np.allclose(faces, plots.superposition_colors([0.0])[0])
    # A neuron shared by features 0 and 1 gives both the same non-zero superposition colour.
    W1s = np.vstack([W1, [[1.0, 1.0, 0.0]]])
    W2s = np.hstack([W2, np.zeros((3, 1))])
    faces = polys(plots.plot_neuron_stack(W1s, W2s))[0].get_facecolors()
    distinct = {tuple(np.round(f, 6)) for f in faces}
    assert len(distinct) == 2  # feature 2 (alone) against features 0 and 1 (shared)
    by_importance = polys(plots.plot_neuron_stack(W1, W2, color_by="importance"))[0]
    assert len({tuple(np.round(f, 6)) for f in by_importance.get_facecolors()}) == 3


def test_stack_draws_leftovers_hatched_and_apart() -> None:
    rng = np.random.default_rng(0)
    W1_0, W2_0 = rng.normal(0, 0.12, (4, 10)), rng.normal(0, 0.12, (10, 4))
    W1, W2 = W1_0.copy(), W2_0.copy()
    W1[0, 0], W2[0, 0] = 2.0, 1.5  # neuron 0 learned x0; everything else is initial
    plain = polys(plots.plot_neuron_stack(W1, W2))
    told = polys(plots.plot_neuron_stack(W1, W2, init=(W1_0, W2_0)))
    assert len(plain) == 1  # without the initial weights every weight is drawn as learned
    assert len(told) == 2 and len(told[0].get_paths()) == 1  # only x0's weight is learned
    assert len(told[1].get_paths()) == len(plain[0].get_paths()) - 1
    assert told[1].get_hatch() == "////"


def test_graph_view_draws_only_the_chosen_features() -> None:
    eye = np.eye(30)
    W1, W2 = np.vstack([eye[:10], -eye[:10]]), np.hstack([eye[:, :10], eye[:, :10]])
    ax = plots.plot_graph(W1, W2, np.zeros(30), features=[0, 3, 7])
    lines = [c for c in ax.collections if isinstance(c, LineCollection)][0]
    assert len(lines.get_segments()) == 3 * 4  # each feature: 2 neurons in, 2 neurons out
    nodes = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [len(c.get_offsets()) for c in nodes] == [3, 6, 3]


def test_run_figures_include_the_graph_of_computed_features(tmp_path: Path) -> None:
    config = default_config(
        "abs", n_features=30, n_hidden=8, sparsity=(0.0,), steps=300, batch=128, lr=1e-2,
        eval_samples=1024,
    )  # fmt: skip
    run = train(config, progress=False)
    computed = run_figures.computed_features(run, 0)
    assert 0 < len(computed) < 30
    written = run_figures.write_run_figures(run, tmp_path)
    assert tmp_path / "graph.png" in written and tmp_path / "neuron_stack.svg" in written


def test_graph_view_of_no_computed_feature_is_an_empty_panel() -> None:
    # `glassbox train abs --features 30 --neurons 12 --sparsity 0.95 --steps 3000 --seed 11`
    # computes no feature on both signs: its graph panel has no node and says so.
    rng = np.random.default_rng(11)
    W1, W2 = rng.normal(size=(12, 30)), rng.normal(size=(30, 12))
    ax = plots.plot_graph(W1, W2, np.zeros(30), features=[])
    nodes = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [len(c.get_offsets()) for c in nodes] == [0, 0, 0]
    assert [t.get_text() for t in ax.texts] == ["no feature computed"]
    # One feature no neuron touches: its two nodes, no neuron, no edge.
    ax = plots.plot_graph(W1, np.zeros_like(W2), np.zeros(30), features=[3], threshold=2.0)
    nodes = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [len(c.get_offsets()) for c in nodes] == [1, 0, 1]


def test_a_figure_that_fails_keeps_the_trained_run_and_names_the_figure(
    tmp_path: Path, monkeypatch
) -> None:
    from glassbox.toy.run import load_run, save_run

    config = default_config("abs", n_features=6, n_hidden=3, sparsity=(0.0,), steps=20, batch=64)
    run = train(config, progress=False)

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("x and y must be the same size")

    monkeypatch.setattr(run_figures, "plot_graph", broken)
    out = tmp_path / "run"
    try:
        save_run(run, out)
    except run_figures.FigureError as exc:
        message = str(exc)
    else:
        raise AssertionError("no FigureError")
    assert "'graph'" in message and "x and y must be the same size" in message
    assert str(out) in message and "glassbox plot" in message and "\n" not in message
    again = load_run(out)  # the weights are there, bit for bit
    assert all(np.array_equal(again.weights[k], run.weights[k]) for k in run.weights)
    assert (out / "figures" / "loss.png").is_file() and not (out / "figures" / "graph.png").exists()


def test_train_of_a_run_that_computes_no_feature_draws_every_figure(tmp_path: Path) -> None:
    # The run that crashed plot_graph ("x and y must be the same size") before.
    from glassbox.cli import main

    out = tmp_path / "abs"
    args = "train abs --features 30 --neurons 12 --sparsity 0.95 --steps 3000 --seed 11"
    assert main([*args.split(), "--out", str(out)]) == 0
    names = {p.name for p in (out / "figures").iterdir()}
    assert {"graph.png", "neuron_stack.png", "weights.png", "loss.png"} <= names
    assert (out / "weights.safetensors").is_file()


def test_train_says_which_figure_failed_in_one_line_and_exits_1(
    tmp_path: Path, monkeypatch
) -> None:
    import contextlib
    import io

    from glassbox.cli import main

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(run_figures, "plot_weights", broken)
    out, err = tmp_path / "abs", io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", "abs", "--features", "5", "--neurons", "3", "--steps", "20",
                     "--out", str(out)])  # fmt: skip
    assert code == 1 and (out / "weights.safetensors").is_file()
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("glassbox: error: figure 'weights' failed")
