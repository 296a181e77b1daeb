"""``glassbox sweep-plot DIR``: a sweep folder's figures and tables, from its points' result.json.

- ``train`` grids: the paper-style phase diagram (per size and ``1 - S``: the share of
  features with dedicated neurons, in superposition, or not represented; seeds averaged)
  as ``phase.png/.svg``, loss against sparsity as ``loss.png/.svg``, and ``summary.md/.csv``.
- ``extract`` grids: per target and defence, success rate, median queries, median seconds
  and worst errors of the successes, as ``table.md/.csv`` and ``extract.png/.svg``.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from glassbox.errors import GlassboxError
from glassbox.io import atomic_path
from glassbox.sweep.jobs import PHASES
from glassbox.sweep.runner import load_sweep

#: Phase colours: dedicated blue, superposition red, not represented light grey; mixed by share.
PHASE_RGB = {"dedicated": (0.13, 0.40, 0.67), "superposition": (0.70, 0.09, 0.17), "not_represented": (0.88, 0.88, 0.88)}  # fmt: skip
LABEL_BOX = {"facecolor": "white", "alpha": 0.7, "linewidth": 0, "boxstyle": "round,pad=0.2"}
PHASE_MARK = {"dedicated": "D", "superposition": "S", "not_represented": "-"}


def plot_sweep_dir(folder: str | Path) -> tuple[str, list[Path]]:
    """Draw and tabulate the sweep in ``folder``; returns the markdown table and the files written."""
    root = Path(folder)
    sweep, records = load_sweep(root)
    if not records:
        raise GlassboxError(f"{root}: no finished points yet; run `glassbox sweep` first")
    missing = len(sweep["points"]) - len(records)
    note = (
        f"\n{missing} of {len(sweep['points'])} points not finished (left out).\n"
        if missing
        else ""
    )
    if sweep["job"] == "train":
        header, rows = train_rows(records)
        files = _phase_figure(rows, root / "phase") + _loss_figure(rows, root / "loss")
        name = "summary"
    else:
        header, rows = extract_rows(records)
        files = _extract_figure(rows, root / "extract")
        name = "table"
    table = markdown(header, rows) + note
    files += [
        _write_text(root / f"{name}.md", table),
        _write_text(root / f"{name}.csv", _csv(header, rows)),
    ]
    return table, files


def _group(axes: dict[str, Any], config: dict[str, Any], skip: Sequence[str]) -> str:
    label = ", ".join(f"{k}={v}" for k, v in axes.items() if k not in skip)
    return label or f"n={config['n_features']}, m={config['n_hidden']}"


def train_rows(records: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """One row per size group and ``1 - S``: phase shares (mean over seeds), median losses."""
    cells: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for rec in records:
        label = _group(rec["axes"], rec["config"], ("seed",))
        for inst in rec["result"]["instances"]:
            cells.setdefault((label, round(inst["density"], 12)), []).append(inst)
    header = ["group", "1-S", "runs", *PHASES, "final_loss", "loss_ratio"]
    rows: list[list[Any]] = []
    for (label, density), insts in cells.items():
        shares = [
            statistics.fmean(i["phase"][p] / max(sum(i["phase"].values()), 1) for i in insts)
            for p in PHASES
        ]
        rows.append(
            [label, density, len(insts), *(round(s, 4) for s in shares)]
            + [statistics.median(i["final_loss"] for i in insts)]
            + [statistics.median(i["loss_ratio"] for i in insts)]
        )
    order = {label: k for k, label in enumerate(dict.fromkeys(label for label, _ in cells))}
    rows.sort(key=lambda r: (order[r[0]], -r[1]))  # groups in grid order, dense first
    return header, rows


def extract_rows(records: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """One row per target and defence: successes, median queries and seconds, worst errors."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in records:
        key = (rec["config"]["target"], rec["config"]["defence"])
        groups.setdefault(key, []).append(rec)
    header = ["target", "defence", "ok", "runs", "success_rate", "queries_log2_median",
              "seconds_median", "max_weight_err_log2_worst", "functional_err_log2_worst"]  # fmt: skip
    rows: list[list[Any]] = []
    for (target, defence), recs in groups.items():
        res = [r["result"] for r in recs]
        good = [r for r in res if r["success"]]
        q = [r["queries_log2"] for r in res if r["queries_log2"] is not None]
        worst = [
            max((r[k] for r in good if r[k] is not None), default=None)
            for k in ("max_weight_error_log2", "epsilon_log2")
        ]
        rows.append(
            [target, defence, len(good), len(res), round(len(good) / len(res), 4)]
            + [round(statistics.median(q), 2) if q else None]
            + [round(statistics.median(r["timing"]["seconds"] for r in recs), 2)]
            + [None if w is None else round(w, 1) for w in worst]
        )
    return header, rows


def markdown(header: list[str], rows: list[list[Any]]) -> str:
    """A markdown table; ``None`` prints as ``-``, floats compactly."""

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buffer.getvalue()


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _layout(
    rows: list[list[Any]], key: int, col: int
) -> tuple[list[Any], list[Any], dict[tuple[Any, Any], list[Any]]]:
    """Row labels, column labels (in first-seen order) and the table rows by (row, column)."""
    ys = list(dict.fromkeys(r[key] for r in rows))
    xs = list(dict.fromkeys(r[col] for r in rows))
    return ys, xs, {(r[key], r[col]): r for r in rows}


def _save(fig: Any, stem: Path) -> list[Path]:
    from glassbox.toy.plots import save_figure

    return save_figure(fig, stem)


def _phase_figure(rows: list[list[Any]], stem: Path) -> list[Path]:
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    groups, _, cells = _layout(rows, 0, 1)
    densities = sorted({r[1] for r in rows}, reverse=True)  # dense on the left, as the paper reads
    image = np.ones((len(groups), len(densities), 3))
    size = (max(4.5, 1.5 + 0.7 * len(densities)), 1.6 + 0.45 * len(groups))
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    for gi, g in enumerate(groups):
        for di, d in enumerate(densities):
            row = cells.get((g, d))
            if row is None:
                continue
            shares = dict(zip(PHASES, row[3:6], strict=True))
            image[gi, di] = sum(np.array(PHASE_RGB[p]) * s for p, s in shares.items())
            top = max(PHASES, key=lambda p: shares[p])
            ax.text(di, gi, f"{PHASE_MARK[top]}\n{shares[top]:.0%}", ha="center", va="center", fontsize=7,
                    color="black" if top == "not_represented" else "white")  # fmt: skip
    ax.imshow(image, aspect="auto")
    ax.set_xticks(range(len(densities)), [f"{d:g}" for d in densities], fontsize=7)
    ax.set_yticks(range(len(groups)), groups, fontsize=7)
    ax.set(xlabel="feature density 1 - S", title="features by representation")
    handles = [
        Patch(color=PHASE_RGB[p], label=f"{PHASE_MARK[p]} {p.replace('_', ' ')}") for p in PHASES
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=7)
    return _save(fig, stem)


def _loss_figure(rows: list[list[Any]], stem: Path) -> list[Path]:
    from matplotlib.figure import Figure

    groups = list(dict.fromkeys(r[0] for r in rows))
    fig = Figure(figsize=(9.0, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for g in groups:
        mine = sorted((r for r in rows if r[0] == g), key=lambda r: r[1])
        for ax, col in zip(axes, (6, 7), strict=True):
            ax.plot([r[1] for r in mine], [r[col] for r in mine], "o-", label=g, lw=1, ms=3)
    axes[0].set(xscale="log", yscale="log", xlabel="1 - S", ylabel="final loss (median over seeds)")
    axes[1].set(xscale="log", yscale="log", xlabel="1 - S", ylabel="final loss / best constant")
    for ax in axes:
        ax.invert_xaxis()
    axes[1].legend(fontsize=6)
    return _save(fig, stem)


def _extract_figure(rows: list[list[Any]], stem: Path) -> list[Path]:
    return _save(extract_figure(rows), stem)


def extract_figure(rows: list[list[Any]]) -> Any:
    """Success, median queries and worst error per target (rows) and defence (columns)."""
    from matplotlib.figure import Figure

    targets, defences, cells = _layout(rows, 0, 1)
    # Short titles (with a width each panel can hold) and a labelled colour bar under each.
    panels = (("success rate", 4, "RdYlGn", "{:.0%}", "share of seeds that succeeded"),
              ("median queries", 5, "viridis", "2^{:.1f}", "log2 of the median queries"),
              ("worst weight error\nof the successes", 7, "magma_r", "2^{:.0f}",
               "log2 of the worst weight error"))  # fmt: skip
    fig = Figure(
        figsize=(max(9.0, 3.0 + 2.4 * len(defences) * 3 / 2), 2.4 + 0.4 * len(targets)),
        layout="constrained",
    )
    for ax, (title, col, cmap, fmt, label) in zip(fig.subplots(1, 3), panels, strict=True):
        grid = np.full((len(targets), len(defences)), np.nan)
        for (t, d), row in cells.items():
            if row[col] is not None:
                grid[targets.index(t), defences.index(d)] = row[col]
        limits = (0.0, 1.0) if col == 4 else (None, None)
        image = ax.imshow(
            np.ma.masked_invalid(grid), aspect="auto", cmap=cmap, vmin=limits[0], vmax=limits[1]
        )
        for (ti, di), v in np.ndenumerate(grid):
            text = "-" if math.isnan(v) else fmt.format(v)
            ax.text(di, ti, text, ha="center", va="center", fontsize=7, bbox=LABEL_BOX)
        ax.set_xticks(range(len(defences)), defences, fontsize=8, rotation=45, ha="right")
        ax.set_yticks(range(len(targets)), targets if col == 4 else [], fontsize=8)
        ax.set_title(title, fontsize=9)
        bar = fig.colorbar(image, ax=ax, location="bottom", shrink=0.9, aspect=25)
        bar.set_label(label, fontsize=8)
        bar.ax.tick_params(labelsize=7)
    return fig
