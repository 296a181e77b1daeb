"""The report of one ``glassbox extract`` run, for any target: one self-contained HTML page.

:func:`build_extract_report` turns the record that ``glassbox extract`` writes to
``extraction.json`` (the attack's figures, plus a ``verification`` object when the truth
is known) and the attack's first line (``line.json``) into a page: the headline, the
layers the attack discovered and the evidence for each neuron, the line plot with every
kink marked by the layer of its neuron, where the queries went (by phase and by layer),
the attack's own self-check, and the verification figures when there is a truth. Every
number on the page is read from the record, so the page and ``extraction.json`` agree.
Figures are inlined PNGs: the page fetches nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from glassbox.errors import GlassboxError
from glassbox.extract.kinks import LineKinks
from glassbox.io import atomic_path, dumps_json, read_json
from glassbox.report.extraction_data import (
    CHECK_NAMES,
    LAYER_HEADER,
    check_value,
    evidence_row,
    kinks_by_layer,
    layer_rows,
    outputs_varying,
    queries_by_layer,
    summary_lines,
)
from glassbox.report.figures import line_plot, queries_figure
from glassbox.report.html import CSS, esc, img, section, table, toc
from glassbox.report.line_file import LINE, line_from_json
from glassbox.report.sections import MAX_LINE_CURVES, queries_section, verification_section

EXTRACTION, REPORT = "extraction.json", "report.html"

#: Files of an extract folder the report links to, when they are there (relative links).
EXTRACT_FILES = (
    (
        EXTRACTION,
        "the attack's figures: verdict, architecture, queries by phase and by layer, every "
        "neuron's evidence, and the verification when the truth is known",
    ),
    ("recovered.safetensors", "the recovered network (glassbox verify and glassbox net read it)"),
    ("config.json", "the attack's configuration"),
    (LINE, "the first line's queried points and kinks (this report's line plot)"),
    ("line.png", "the line plot"),
    ("line.svg", "the line plot, as vector graphics"),
)


# ------------------------------------------------------------------ sections
def _headline(record: dict[str, Any]) -> list[str]:
    ok = bool(record.get("success"))
    verdict = (
        "passed: on fresh queries of its own, the reconstruction answers as the black box does, "
        "and every kink it saw lies on a recovered neuron's hyperplane"
        if ok
        else "failed: the attack reports that it did not recover the network (see the self-check)"
    )
    known = (
        "The truth was known here (the attack never saw it), so the last section holds the "
        "reconstruction against it."
        if record.get("verification")
        else f"{_no_verification(record)} The self-check is the only judge."
    )
    return [
        "<pre class='summary'>" + esc("\n".join(summary_lines(record))) + "</pre>",
        "<p class='caption'>f is the black box and f_hat the reconstruction. The attack "
        "saw only f's answers to the queries it asked. Its own check, made without the truth, "
        f"<span class='{'ok' if ok else 'fail'}'>{esc(verdict)}</span>. {esc(known)}</p>",
    ]


def _layers_section(record: dict[str, Any]) -> list[str]:
    rows = layer_rows(record)
    parts = [
        section("layers", "Layer by layer"),
        "<p>The attack recovers one hidden layer after another. Each layer's neurons are read "
        "off the kinks (critical points) it finds on lines through input space, through the "
        "layers already recovered; a <b>witness</b> is one such kink whose change of slope "
        "gives a neuron's row (up to a positive scale). A rank-deficient witness constrains a "
        "row without fixing it; an incomplete row lacks coordinates until other witnesses fill "
        "them. Then the neuron's <b>sign</b> is found (the scale must be positive): by the "
        "neuron wiggle, with votes and a confidence per neuron, or, for the last hidden layer, "
        "by a linear solve that also gives the output layer. The queries and seconds of a layer "
        "include everything spent on it.</p>",
        table(LAYER_HEADER, rows) if rows else "<p class='fail'>The attack recovered no layer.</p>",
    ]
    for layer in record.get("layers", []):
        evidence = layer.get("neuron_evidence", [])
        if not evidence:
            continue
        parts.append(
            f"<details><summary>Layer {esc(layer.get('layer'))}: the evidence for each of its "
            f"{len(evidence)} neurons</summary>"
            + table(
                (
                    "neuron",
                    "witnesses",
                    "rank-deficient",
                    "known inputs",
                    "error bar",
                    "sign",
                    "votes (+ / -)",
                    "sign confidence",
                ),
                [evidence_row(j, e) for j, e in enumerate(evidence)],
            )
            + "</details>"
        )
    notes = [*record.get("notes", []), *(f"invisible: {v}" for v in record.get("invisible", []))]
    if notes:
        parts.append(
            "<p>The attack's notes:</p><ul>"
            + "".join(f"<li>{esc(n)}</li>" for n in notes)
            + "</ul>"
        )
    return parts


def _line_section(line: LineKinks | None, record: dict[str, Any]) -> list[str]:
    head = section("line", "How the attack sees the model: the line plot")
    if line is None and record.get("line"):
        return [
            head,
            f"<p>The line's queried points ({LINE}) are not in this folder, so the plot cannot "
            "be drawn; its kinks are in extraction.json, and line.png shows it.</p>",
        ]
    if line is None:
        return [head, "<p>The attack kept no line for this run.</p>"]
    per, n_out = kinks_by_layer(line)
    layers = ", ".join(
        f"{per[k]} made by layer-{k} neurons" for k in sorted(per) if k > 0 and per[k]
    )
    unknown = per.get(0, 0)
    active = int(np.count_nonzero(np.ptp(line.samples_f, axis=0) > 0))
    shown = max(1, min(active, MAX_LINE_CURVES))
    return [
        head,
        f"<p>The attack's first line, x(t) = x0 + t d for t in [{line.t_lo:g}, {line.t_hi:g}]. "
        "Along it every output is piecewise linear: it bends where a neuron of any layer switches "
        f"on or off. {line.samples_t.size:,} queries on this line placed {line.t.size} kinks: "
        f"{sum(per.values())} where a hidden neuron switches"
        + (f" ({layers}" if layers else " (")
        + (
            f"{'; ' if layers else ''}{unknown} not attributed to a recovered neuron)"
            if unknown
            else ")"
        )
        + f", and {n_out} where an output's own ReLU switches it off. "
        + outputs_varying(active, line.samples_f.shape[1], shown)
        + "</p>",
        img(line_plot(line, top_k=shown), "f along a line with its kinks, marked by layer"),
        "<p class='caption'>Vertical lines: hidden-neuron kinks, one colour and dash style per "
        "layer of the recovered neuron that made the kink; crosses: output-ReLU kinks. A "
        "first-layer neuron's kinks lie on a hyperplane; a deeper neuron's hyperplane is bent "
        "wherever an earlier neuron switches.</p>",
    ]


def _layer_queries_section(record: dict[str, Any]) -> list[str]:
    by_layer = queries_by_layer(record)
    total = int(record.get("queries") or 0)
    if not by_layer:
        return []
    rows = [(k, f"{v:,}", f"{v / total:.1%}" if total else "-") for k, v in by_layer.items()]
    return [
        "<h3 id='queries-by-layer'>Queries by layer</h3>",
        table(["layer", "queries", "share"], rows),
        img(queries_figure(by_layer, title="queries by layer", sort=False), "queries by layer"),
    ]


def _check_section(record: dict[str, Any]) -> list[str]:
    check = record.get("check") or {}
    ok = bool(record.get("success"))
    rows = [(CHECK_NAMES.get(k, k), check_value(k, v)) for k, v in check.items()]
    return [
        section("check", "The attack's self-check"),
        "<p>Made without the truth: the reconstruction is compared with the black box on fresh "
        "queries, including points a hair either side of every recovered neuron's hyperplane, "
        "and every kink seen on the lines must lie on a recovered neuron's hyperplane. Success "
        "is this verdict alone: "
        f"<span class='{'ok' if ok else 'fail'}'>{esc(record.get('message', ''))}</span></p>",
        table(["what", "value"], rows) if rows else "<p>The self-check did not run.</p>",
    ]


def _no_verification(record: dict[str, Any]) -> str:
    if record.get("net") is None:
        return "The attack recovered no network, so there is nothing to verify."
    return "The truth is not known for this target, so nothing holds the reconstruction against it."


def _truth_section(record: dict[str, Any]) -> list[str]:
    ver = record.get("verification")
    if not ver:
        return [
            section("verification", "Verification"),
            f"<p>{esc(_no_verification(record))} The self-check above is the verdict.</p>",
        ]
    notes = [
        (what, str(int(n["layer"]) + 1), str(n["index"]), n["reason"])
        for what, key in (
            ("dead (truth)", "dead"),
            ("invisible (truth)", "invisible"),
            ("not recovered (truth)", "unmatched_truth"),
            ("extra (reconstruction)", "unmatched_recovered"),
        )
        for n in ver.get(key, [])
    ]
    parts = verification_section(ver)
    parts.append(
        "<p>Weight layers are numbered W1 (inputs to the first hidden layer) to "
        f"W{len(ver.get('per_layer_error_log2', []))} (the last hidden layer to the outputs).</p>"
    )
    if notes:
        parts += [
            "<p>Neurons of the truth set apart from the weight error (dead: never active on "
            "the verification's sampled inputs; invisible: it writes nothing to the outputs). "
            "Either changes nothing on those inputs; the attack may still have recovered a "
            "dead one from inputs the samples missed:</p>",
            table(["what", "hidden layer", "neuron", "why"], notes),
        ]
    else:
        parts.append("<p>Every neuron of the truth was recovered; none is left over.</p>")
    return parts


def _files_section(record: dict[str, Any], folder: Path | None) -> list[str]:
    present = [(f, what) for f, what in EXTRACT_FILES if folder is None or (folder / f).exists()]
    links = "".join(
        f"<li><a href='{esc(f)}'><code>{esc(f)}</code></a>: {esc(what)}</li>" for f, what in present
    )
    return [
        section("files", "Files and configuration"),
        f"<p>This run's files, beside this report:</p><ul>{links}</ul>",
        "<details><summary>The attack's configuration (config.json)</summary>",
        f"<pre>{esc(dumps_json(record.get('config', {})))}</pre></details>",
    ]


# ---------------------------------------------------------------------- page
def build_extract_report(
    record: dict[str, Any], line: LineKinks | None, folder: Path | None = None
) -> str:
    """The page for one extract run: ``record`` is extraction.json's object, ``line`` the first line.

    ``folder`` (where the run's files are) limits the file links to the files that exist.
    """
    target = str(record.get("target", "an unknown target"))
    contents = [
        ("layers", "Layer by layer"),
        ("line", "The line plot"),
        ("queries", "Where the queries went"),
        ("check", "The attack's self-check"),
        ("verification", "Verification"),
        ("files", "Files and configuration"),
    ]
    parts = [
        f"<h1>Extraction of {esc(target)}: "
        f"{esc(record.get('architecture') or 'no network')} from queries alone</h1>",
        *_headline(record),
        toc(contents),
        *_layers_section(record),
        *_line_section(line, record),
        *queries_section(record),
        *_layer_queries_section(record),
        *_check_section(record),
        *_truth_section(record),
        *_files_section(record, folder),
    ]
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(target)}: glassbox extraction report</title>"
        f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def is_extract_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder written by ``glassbox extract`` (not a demo run)."""
    folder = Path(path)
    return (folder / EXTRACTION).is_file() and not (folder / "toy").exists()


def rebuild_extract_report(run_dir: str | os.PathLike[str]) -> Path:
    """Rewrite ``RUN_DIR/report.html`` from an extract folder's extraction.json and line.json."""
    folder = Path(run_dir)
    record = read_json(folder / EXTRACTION)
    if not isinstance(record, dict) or "queries_by_phase" not in record:
        raise GlassboxError(f"{folder / EXTRACTION} is not what glassbox extract writes")
    line = line_from_json(read_json(folder / LINE)) if (folder / LINE).is_file() else None
    path = folder / REPORT
    with atomic_path(path) as tmp:
        tmp.write_text(build_extract_report(record, line, folder), encoding="utf-8")
    return path


__all__ = [
    "EXTRACT_FILES",
    "build_extract_report",
    "is_extract_dir",
    "kinks_by_layer",
    "layer_rows",
    "queries_by_layer",
    "rebuild_extract_report",
    "summary_lines",
]
