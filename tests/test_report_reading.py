"""The report reads at a glance: sentences follow the figures' numbers, panels say what they are."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from glassbox.io import read_json
from glassbox.mlp import ReLUNet
from glassbox.report import demo_page as report
from glassbox.report import figures as report_figures
from glassbox.toy import analysis
from glassbox.toy.summary import summarize
from glassbox.verify.compare import align
from test_report import PERM, SCALE, disguised, inputs_for, truth_net

N, M = 5, 6


def net_with_pairs(pairs: list[int]) -> ReLUNet:
    """An abs(x) model where exactly the features in ``pairs`` have a dedicated +/- pair.

    The other features share two polysemantic neurons (superposition) or are dropped.
    """
    others = [i for i in range(N) if i not in pairs]
    w1 = np.zeros((M, N))
    w2 = np.zeros((N, M))
    for k, f in enumerate(pairs):
        w1[2 * k, f], w1[2 * k + 1, f] = 1.0, -1.0
        w2[f, 2 * k] = w2[f, 2 * k + 1] = 1.0
    shared = range(2 * len(pairs), M)
    for j, neuron in enumerate(shared):
        for f in others:
            w1[neuron, f] = 1.0 if (f + j) % 2 else -1.0
            w2[f, neuron] = 1.0
    return ReLUNet([w1, w2], [None, np.zeros(N)], output_relu=True)


def reading_items(page: str) -> list[str]:
    section = page[page.index("id='reading'") :]
    section = section[: section.index("</ul>")]
    return [re.sub(r"<[^>]+>", "", li) for li in re.findall(r"<li>(.*?)</li>", section)]


@pytest.mark.parametrize("pairs", [[0, 1], [0, 2], [1], [2], [0]])
def test_the_neurons_of_their_own_sentence_lists_exactly_the_dedicated_features(
    pairs: list[int],
) -> None:
    truth = net_with_pairs(pairs)
    w1, w2 = truth.weights
    features = analysis.feature_computation(w1, w2, np.zeros(N))
    dedicated = report.dedicated_features(features)
    assert dedicated == pairs  # the classification the figures' captions use sees the pairs built
    page = report.build_report(inputs_for(disguised(truth, PERM, SCALE), truth))
    items = reading_items(page)
    sentence = next(s for s in items if "of its own" in s or "of their own" in s)
    if len(pairs) == 1:
        assert sentence.startswith(f"Feature {pairs[0]} has neurons of its own")
    else:
        assert sentence.startswith(
            f"{len(pairs)} features ({report._index_list(pairs)}) have neurons"
        )
    leading = pairs == list(range(len(pairs)))
    assert ("most important" in sentence) == leading
    assert ("Importance does not order this strictly" in sentence) == (not leading)
    # No other sentence names a single feature as the only one with neurons of its own.
    assert not any("Only feature" in s for s in items)


def test_the_reading_follows_the_demo_runs_own_numbers(
    demo_run: tuple[Path, int, str, str],
) -> None:
    out = demo_run[0]
    truth = ReLUNet.load(out / "truth.safetensors")
    w1, w2 = truth.weights
    features = analysis.feature_computation(w1, w2, truth.biases[1])
    n = w1.shape[1]
    summary = summarize(w1, w2, truth.biases[1])
    expected = report.dedicated_sentence(
        report.dedicated_features(features), n, summary["features_computed"]
    )
    assert expected in reading_items((out / "report.html").read_text())


def test_order_headline_contents_title_and_files(demo_run: tuple[Path, int, str, str]) -> None:
    out = demo_run[0]
    page = (out / "report.html").read_text()
    assert f"<title>{out.name}: glassbox report</title>" in page
    assert page.index("<img ") < page.index("<details>")  # the config comes after the figures
    details = page[page.index("<details>") : page.index("</details>")]
    assert '"toy"' in details or "&quot;toy&quot;" in details
    # One notation, one headline figure: f_hat, and the functional error printed once up top.
    assert "f'" not in page.replace("y'", "")
    head = page[: page.index("<nav")]
    assert head.count("functional error") == 2  # the summary line and the sentence defining it
    assert head.index("<b>tolerance</b>") < page.index("tolerance", head.index("</pre>") + 1) + 1
    assert "<b>delta</b> is the fraction" in head
    # Every contents entry links to a heading that exists.
    anchors = re.findall(r"<a href='#([a-z]+)'>", page)
    assert len(anchors) >= 10 and all(f"id='{a}'" in page for a in anchors)
    # Links to the run's files, each of which exists beside the report.
    for name, _ in report.RUN_FILES:
        assert f"<a href='{name}'>" in page
        assert (out / name).exists(), name


def test_every_neuron_is_in_the_difference_table() -> None:
    truth = truth_net()
    page = report.build_report(inputs_for(disguised(truth, PERM, SCALE), truth))
    table = page[page.index("<th>role</th>") :]
    table = table[: table.index("</table>")]
    assert sorted(int(i) for i in re.findall(r"<tr><td>(\d+)</td>", table)) == list(range(M))
    assert f"All {M} neurons of the truth, largest difference first" in page


def test_weight_panels_name_their_side_and_label_their_axes() -> None:
    truth = truth_net()
    w1, w2 = truth.weights
    sides = [
        ("truth", w1, w2, np.zeros(N), list(range(M))),
        ("reconstruction", w1, w2, np.zeros(N), list(range(M))),
    ]
    fig = report_figures.weights_figure(sides, np.ones(N))
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 4
    for ax in panels:
        assert ax.get_title().split(":")[0] in ("truth", "reconstruction")
        assert ax.get_xlabel() and ax.get_ylabel()
    for ax in report_figures.stack_figure(sides, np.ones(N)).axes[:2]:
        assert ax.get_title().split(":")[0] in ("truth", "reconstruction")
    for ax in report_figures.graph_figure(sides, list(range(N))).axes:
        assert ax.get_title().split(":")[0] in ("truth", "reconstruction")


def test_paper_size_weight_panels_are_wide_with_readable_labels() -> None:
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(40, 100)), rng.normal(size=(100, 40))
    side = ("truth", w1, w2, np.zeros(100), list(range(40)))
    fig = report_figures.weights_figure([side, ("reconstruction", *side[1:])], np.ones(100))
    fig.canvas.draw()
    width = fig.bbox.width
    for ax in (ax for ax in fig.axes if ax.get_images()):
        # No slivers: each panel takes a quarter of the page's width and the image fills it.
        assert ax.get_window_extent().width > 0.25 * width and ax.get_aspect() == "auto"
        labels = [t for t in ax.get_yticklabels() if t.get_text()]
        assert labels and min(t.get_fontsize() for t in labels) >= 7


def test_stack_colours_tell_features_apart_by_superposition() -> None:
    truth = truth_net()  # features 0, 1: dedicated pairs; 2-4 share two neurons
    s, colors = report_figures.superposition_colors(truth.weights[0])
    assert np.all(s[:2] == 0) and np.all(s[2:] > 0.1)
    assert not np.allclose(colors[0], colors[3])
    fig = report_figures.stack_figure(
        [("truth", *truth.weights, np.zeros(N), list(range(M)))], np.ones(N)
    )
    assert any("superposition" in ax.get_ylabel() for ax in fig.axes)  # the colour bar
    # The legend sits below the panels (inside, it covered the first neurons' bars).
    assert fig.axes[0].get_legend() is None and len(fig.legends) == 1
    fig.canvas.draw()
    legend, panel = fig.legends[0].get_window_extent(), fig.axes[0].get_window_extent()
    assert legend.y1 <= panel.y0
    ticks = [t for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert ticks and min(t.get_fontsize() for t in ticks) >= 9


def test_the_graph_draws_only_computed_features_at_paper_size() -> None:
    features = [
        analysis.Feature(i, "pair" if i < 7 else "not_represented", 0.0, 0.0, (), ())
        for i in range(100)
    ]
    assert report_figures.graph_features(features) == list(range(7))
    rng = np.random.default_rng(1)
    side = ("truth", rng.normal(size=(40, 100)), rng.normal(size=(100, 40)), np.zeros(100))
    fig = report_figures.graph_figure([(*side, list(range(40)))], list(range(7)))
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {f"x{i}" for i in range(7)} <= texts and "x7" not in texts
    assert fig.legends, "the graph view has a legend"


def test_round_off_is_calm_and_a_real_error_alarming() -> None:
    norm = report_figures.DIFF_RANGE
    cmap = __import__("matplotlib").colormaps[report_figures.DIFF_CMAP]

    def colour(log2: float) -> np.ndarray:
        return np.asarray(cmap((log2 - norm[0]) / (norm[1] - norm[0])))

    green, red = colour(-52.0), colour(-12.0)
    assert green[1] > green[0] and red[0] > red[1]  # round-off green, 2^-12 red
    assert colour(-44.0)[1] > colour(-44.0)[0]  # the attack's usual 2^-44 is still green
    diffs = {"W1": np.full((M, N), 2.0**-45), "W2": np.full((N, M), 2.0**-45), "b": np.zeros(N)}
    fig = report_figures.difference_figure(diffs, list(range(M)))
    ticks = [
        t.get_text().replace("\n", " ")
        for ax in fig.axes
        for t in [*ax.get_yticklabels(), *ax.get_xticklabels()]
    ]
    assert "-52 round-off" in ticks
    # The colour bar is labelled, and neither it nor its label reaches the per-neuron panel.
    fig.canvas.draw()
    bar = [ax for ax in fig.axes if "log2 |Δ| of each weight" in ax.get_xlabel()]
    assert len(bar) == 1
    per_neuron = next(ax for ax in fig.axes if ax.get_title() == "per neuron")
    assert not bar[0].get_tightbbox().overlaps(per_neuron.get_window_extent())
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert "exactly equal" not in labels  # no grey bar, so no grey legend entry
    diffs["W1"][0] = diffs["W2"][:, 0] = 0.0
    fig = report_figures.difference_figure(diffs, list(range(M)))
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert "exactly equal" in labels


def test_verification_bars_say_precision_and_use_w1_w2(
    demo_run: tuple[Path, int, str, str],
) -> None:
    ver = read_json(demo_run[0] / "verification.json")
    fig = report_figures.verification_figure(ver)
    titles = [ax.get_title() for ax in fig.axes]
    assert all("precision" in t for t in titles)
    # Bars are labelled in the axis's unit (bits), and the tolerance is named in a legend
    # outside the panels, not written across the bars.
    words = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert words and not any("error" in w or "tolerance" in w for w in words), words
    assert all(w == "exact" or re.fullmatch(r"-?\d+\.\d", w) for w in words if "float64" not in w)
    fig.canvas.draw()
    legend = [leg for leg in fig.legends if "tolerance" in leg.get_texts()[0].get_text()]
    assert len(legend) == 1
    assert legend[0].get_window_extent().y1 <= min(ax.get_window_extent().y0 for ax in fig.axes)
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["W1", "W2"]
    page = (demo_run[0] / "report.html").read_text()
    assert "layer 0" not in page and "W1: " in page
    assert "<b>Same pattern</b> is the fraction" in page
    assert f"{ver['same_pattern_fraction']:.4f}" in page


def test_the_line_plot_keeps_its_legend_off_the_curves_and_says_why_it_is_long(
    demo_run: tuple[Path, int, str, str],
) -> None:
    from glassbox.demo.run import load_inputs

    inputs = load_inputs(demo_run[0])
    assert inputs.line is not None
    fig = report_figures.line_plot(inputs.line, top_k=10)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert legend is not None
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1  # beside, not over
    title = ax.title.get_window_extent()
    assert title.x0 >= 0 and title.x1 <= fig.bbox.x1  # not clipped
    x_max, _, _ = report.line_ranges(inputs.line)
    assert x_max > 1.0
    page = (demo_run[0] / "report.html").read_text()
    assert f"up to |x_i| = {x_max:.3g}" in page


def test_the_abs_figure_draws_each_features_output_for_both_nets() -> None:
    truth = truth_net()
    recovered = disguised(truth, PERM, SCALE)
    x, yt = report_figures.abs_curves(truth, range(N))
    _, yr = report_figures.abs_curves(recovered, range(N))
    assert yt.shape == (N, x.size)
    X = np.zeros((x.size, N))
    X[:, 2] = x
    np.testing.assert_array_equal(yt[2], truth.forward(X)[:, 2])
    np.testing.assert_allclose(yr, yt, atol=1e-15)
    fig = report_figures.abs_figure(truth, recovered, list(range(N)))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [f"feature {i}" for i in range(N)]
    page = report.build_report(inputs_for(recovered, truth))
    assert "id='abs'" in page and 'alt="output against input for each feature' in page


def test_paper_size_report_reads_its_own_numbers(paper_run: Path) -> None:
    page = (paper_run / "report.html").read_text()
    truth = ReLUNet.load(paper_run / "truth.safetensors")
    w1, w2 = truth.weights
    features = analysis.feature_computation(w1, w2, truth.biases[1])
    drawn = report_figures.graph_features(features)
    assert len(drawn) <= max(20, sum(f.how != "not_represented" for f in features))
    assert report._graph_caption(drawn, 100, features) in page.replace("&#x27;", "'")
    aligned = align(ReLUNet.load(paper_run / "recovered.safetensors"), truth).aligned
    assert aligned.dims[1] >= truth.dims[1]


def test_one_output_is_not_one_of_one_and_memory_is_in_mib() -> None:
    from glassbox.report.extraction_data import CHECK_NAMES, outputs_varying
    from glassbox.report.sections import queries_section

    assert outputs_varying(1, 1, 1) == "The output varies along the line."
    assert outputs_varying(0, 1, 1) == "The output is constant along the line."
    assert outputs_varying(2, 3, 2).startswith("2 of the 3 outputs vary")
    assert "unmeasured_weights" in CHECK_NAMES  # no raw key in the self-check table
    ex = {"queries_by_phase": {"check": 10}, "queries": 10, "seconds": 0.5, "peak_rss_mb": 44.0}
    text = " ".join(queries_section({**ex, "success": True, "message": "success: ..."}))
    assert "44 MiB" in text and " MB" not in text
