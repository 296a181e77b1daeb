"""The line plot: files written, kinks marked by kind."""

from __future__ import annotations

import numpy as np

from glassbox.extract.kinks import find_kinks
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import net_oracle
from glassbox.report.lineplot import line_figure, save_line_plot


def test_line_plot_marks_every_kink(tmp_path) -> None:  # type: ignore[no-untyped-def]
    net = ReLUNet.random("6-5-3:relu", seed=0)
    rng = np.random.default_rng(0)
    d = rng.normal(size=(1, 6))
    (line,) = find_kinks(net_oracle(net), rng.normal(size=(1, 6)), d / np.linalg.norm(d), -10, 10)
    fig = line_figure(line, top_k=2)
    ax = fig.axes[0]
    n_hidden = sum(k == "hidden" for k in line.kind)
    assert n_hidden > 0
    assert sum(1 for ln in ax.get_lines() if ln.get_linestyle() == "--") == n_hidden
    png, svg = save_line_plot(line, tmp_path / "line")
    assert png.read_bytes()[:4] == b"\x89PNG" and b"<svg" in svg.read_bytes()[:500]
