"""The report from hand-built nets: differences land on the right neuron, numbers follow the run."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from glassbox.mlp import ReLUNet
from glassbox.report import demo_page as report
from glassbox.toy.config import ToyConfig
from glassbox.toy.summary import summarize
from glassbox.verify.compare import align, verify

N, M = 5, 6


def truth_net() -> ReLUNet:
    """An abs(x) model: clean +/- pairs for features 0 and 1, two polysemantic neurons."""
    w1 = np.zeros((M, N))
    w1[0, 0], w1[1, 0], w1[2, 1], w1[3, 1] = 1.0, -1.0, 1.0, -1.0
    w1[4, 2:] = [1.0, 0.5, -0.25]
    w1[5, 2:] = [-0.5, 1.0, 0.75]
    w2 = np.zeros((N, M))
    w2[0, :2] = w2[1, 2:4] = 1.0
    w2[2:, 4] = [1.0, 0.5, -0.5]
    w2[2:, 5] = [-0.25, 1.0, 0.5]
    return ReLUNet([w1, w2], [None, np.full(N, -0.125)], output_relu=True)


def disguised(net: ReLUNet, perm: np.ndarray, scale: np.ndarray) -> ReLUNet:
    """The same function with neurons permuted and rescaled by powers of two (exact in float64)."""
    w1, w2 = net.weights
    return ReLUNet([w1[perm] * scale[:, None], w2[:, perm] / scale], list(net.biases), True)


PERM = np.array([3, 0, 5, 1, 4, 2])
SCALE = np.array([2.0, 0.5, 4.0, 1.0, 0.25, 8.0])


def inputs_for(recovered: ReLUNet, truth: ReLUNet) -> report.ReportInputs:
    toy = ToyConfig(n_features=N, n_hidden=M, sparsity=(0.9,), steps=10, restarts=2)
    ver = verify(recovered, truth, n_samples=256, sparse_probability=0.1, queries=1234).to_json()
    extraction: dict[str, Any] = {
        "success": True,
        "message": "success: hand-built",
        "queries": 1234,
        "queries_by_phase": {"lines": 1000, "check": 234},
        "seconds": 0.5,
        "peak_rss_mb": 100.0,
    }
    training = {
        "kept_restart": [1],
        "restart_final_loss": [[0.02, 0.01]],
        "loss_curve": {"step": [5, 10], "loss": [[0.1], [0.01]]},
        "steps_per_second": 100.0,
    }
    return report.ReportInputs(
        config={"toy": {"n_features": N}},
        toy=toy,
        instance=0,
        training=training,
        truth=truth,
        recovered=recovered,
        extraction=extraction,
        verification=ver,
        line=None,
    )


def perturbed(net: ReLUNet, neuron: int, by: float) -> ReLUNet:
    """``net`` with one neuron's incoming row nudged (the neuron at position ``neuron``)."""
    w1, w2 = (w.copy() for w in net.weights)
    w1[neuron, 0] += by
    return ReLUNet([w1, w2], list(net.biases), net.output_relu)


def test_an_exact_reconstruction_has_zero_difference() -> None:
    truth = truth_net()
    aligned = align(disguised(truth, PERM, SCALE), truth).aligned
    diffs = report.weight_differences(truth, aligned)
    assert all(not np.any(d) for d in diffs.values())


def test_one_perturbed_neuron_shows_up_exactly_there(monkeypatch: pytest.MonkeyPatch) -> None:
    truth = truth_net()
    recovered = disguised(truth, PERM, SCALE)
    target = 4  # truth neuron 4 sits at recovered position where PERM == 4
    bad = perturbed(recovered, int(np.flatnonzero(target == PERM)[0]), 1e-3)

    seen: list[dict[str, np.ndarray]] = []
    original = report.difference_figure

    def spy(diffs: dict[str, np.ndarray], order: Any) -> Any:
        seen.append(diffs)
        return original(diffs, order)

    monkeypatch.setattr(report, "difference_figure", spy)
    clean_html = report.build_report(inputs_for(recovered, truth))
    bad_html = report.build_report(inputs_for(bad, truth))

    clean, diffs = seen
    assert not any(np.any(d) for d in clean.values())
    rows = np.flatnonzero(np.any(diffs["W1"] != 0, axis=1))
    assert rows.tolist() == [target]
    assert np.flatnonzero(diffs["W1"][target]).tolist() == [0]
    assert report.neuron_errors(diffs).argmax() == target
    assert np.count_nonzero(report.neuron_errors(diffs)) == 1

    # The report's numbers move with it: the summary's weight error and the worst-neuron table.
    def weight_error(page: str) -> str:
        match = re.search(r"max weight error:\s+(\S+)", page)
        assert match is not None
        return match.group(1)

    assert weight_error(clean_html) == "0"
    assert weight_error(bad_html).startswith("2^-")
    first_row = re.search(r"<th>role</th></tr><tr><td>(\d+)</td><td>([^<]+)</td>", bad_html)
    assert first_row is not None and first_row.groups()[0] == str(target)
    # ... and so do the figures: the difference image is a different picture.
    images = [
        re.findall(r'src="(data:image/png;base64,[^"]+)"', page) for page in (clean_html, bad_html)
    ]
    assert len(images[0]) == len(images[1])
    changed = [i for i, (a, b) in enumerate(zip(*images, strict=True)) if a != b]
    assert changed, "no figure changed"


def test_the_report_is_self_contained_and_reads_the_run() -> None:
    truth = truth_net()
    page = report.build_report(inputs_for(disguised(truth, PERM, SCALE), truth))
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "<script" not in page
    assert page.count("<img ") >= 6
    summary = summarize(*truth.weights, truth.biases[1])
    assert f"{summary['monosemantic']} neuron(s) are monosemantic" in page
    assert f"{summary['polysemantic']} polysemantic" in page
    assert "6 of the 6 neurons it could see" in page


def test_a_missing_neuron_is_reported_with_its_reason() -> None:
    truth = truth_net()
    w1, w2 = truth.weights
    keep = [0, 1, 2, 3, 4]  # the attack "lost" truth neuron 5
    partial = ReLUNet([w1[keep], w2[:, keep]], list(truth.biases), True)
    inputs = inputs_for(partial, truth)
    page = report.build_report(inputs)
    assert "5 of 6 visible neurons recovered" in page
    assert "not recovered (truth)" in page
    assert report.summary(inputs)[-1].endswith("5 / 6 visible")


def test_fmt_log2_spells_exact_zero_and_missing() -> None:
    assert report.fmt_log2(-1074.0) == "0 (exact)"
    assert report.fmt_log2(None) == "n/a"
    assert report.fmt_log2(-41.25) == "2^-41.2"


def test_a_negligible_extra_neuron_is_named_and_left_out_of_the_figures() -> None:
    truth = truth_net()
    w1, w2 = truth.weights
    # A wrong-sign twin of neuron 0 whose outgoing weights the output fit set to ~0.
    twin_w1 = np.vstack([w1, -w1[:1]])
    twin_w2 = np.hstack([w2, np.full((N, 1), 1e-13)])
    recovered = ReLUNet([twin_w1, twin_w2], list(truth.biases), True)
    aligned = align(recovered, truth).aligned
    shown, dropped = report.drop_negligible_extras(aligned, M)
    assert shown.dims == truth.dims and list(dropped) == [M]
    page = report.build_report(inputs_for(recovered, truth))
    assert "holds 1 neuron(s) beyond the truth" in page
    assert "left out of the figures" in page
    assert "gives the same counts" in page
