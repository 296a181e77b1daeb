"""``glassbox extract --report``: the page of one extraction, checked on the rendered HTML."""

from __future__ import annotations

import base64
import contextlib
import html
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from glassbox.cli import main
from glassbox.io import read_json
from glassbox.report.extraction import build_extract_report
from glassbox.report.extraction_data import kinks_by_layer, queries_by_layer
from glassbox.report.line_file import line_from_json
from glassbox.verify.compare import fmt_log2

SPEC = "random:10-8-6-3"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(argv))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def deep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    folder = tmp_path_factory.mktemp("extract") / "deep"
    code, printed = run("extract", SPEC, "--out", str(folder), "--report")
    assert code == 0, printed
    assert f"report: {folder / 'report.html'}" in printed
    return folder, read_json(folder / "extraction.json"), (folder / "report.html").read_text()


def cells(page: str, after: str) -> list[list[str]]:
    """The body rows of the first table after ``after``, as unescaped cell texts."""
    start = page.index(after)
    body = page[start : page.index("</table>", start)]
    rows = re.findall(r"<tr>(.*?)</tr>", body)
    return [[html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", r)] for r in rows[1:]]


def test_the_page_names_the_target_and_the_discovered_architecture(deep) -> None:
    _, record, page = deep
    assert record["architecture"] == "10-8-6-3"
    target = html.escape(record["target"])
    assert f"<title>{target}: glassbox extraction report</title>" in page
    assert re.search(rf"<h1>Extraction of {re.escape(target)}: 10-8-6-3 ", page)
    assert "architecture:           10-8-6-3 (discovered from queries alone)" in page
    assert f"queries:                {record['queries']:,} " in page
    assert "<span class='ok'>passed" in page and "class='fail'" not in page


def test_one_row_per_layer_with_the_figures_of_extraction_json(deep) -> None:
    _, record, page = deep
    rows = cells(page, "<h2 id='layers'>")
    layers = record["layers"]
    assert len(rows) == len(layers) == len(record["architecture"].split("-")) - 2
    for row, layer in zip(rows, layers, strict=True):
        (number, neurons, lines, kinks, witnesses, _, _, method, confidence, queries, secs) = row
        assert number == str(layer["layer"])
        assert neurons == str(layer["neurons"])
        assert lines == str(layer["lines"]) and kinks == str(layer["kinks"])
        total = sum(e["witnesses"] for e in layer["neuron_evidence"])
        assert witnesses.startswith(f"{total:,} (fewest ")
        assert method == layer["sign_method"]
        assert confidence == f"{layer['lowest_sign_confidence']:.4f}"
        assert queries == f"{layer['queries']:,}"
        assert secs == f"{layer['seconds']:.2f}"
    widths = [int(r[1]) for r in rows]
    assert widths == [int(w) for w in record["architecture"].split("-")[1:-1]]
    # Every neuron's evidence, one table row per neuron.
    for layer in layers:
        evidence = cells(page, f"<summary>Layer {layer['layer']}: the evidence")
        assert len(evidence) == layer["neurons"] == len(layer["neuron_evidence"])
        signs = ["+1" if e["sign"] > 0 else "-1" for e in layer["neuron_evidence"]]
        assert [r[5] for r in evidence] == signs


def test_queries_by_phase_and_by_layer_are_extraction_jsons(deep) -> None:
    _, record, page = deep
    phases = cells(page, "<h2 id='queries'>")
    shown = {r[0]: int(r[1].replace(",", "")) for r in phases}
    assert shown.pop("total") == record["queries"]
    assert shown == record["queries_by_phase"]
    per_layer = cells(page, "<h3 id='queries-by-layer'>")
    by_layer = {r[0]: int(r[1].replace(",", "")) for r in per_layer}
    assert sum(by_layer.values()) == record["queries"]
    for layer in record["layers"]:
        assert by_layer[f"layer {layer['layer']}"] == layer["queries"]


def test_queries_outside_the_layers_are_named_only_when_the_phases_add_up() -> None:
    record = {
        "queries": 100,
        "queries_by_phase": {"probe": 4, "lines": 80, "check": 16},
        "layers": [{"layer": 1, "queries": 80}],
    }
    assert queries_by_layer(record) == {"layer 1": 80, "probe and self-check": 20}
    record["layers"] = [{"layer": 1, "queries": 70}]
    assert queries_by_layer(record) == {"layer 1": 70, "outside any layer": 30}


def test_every_figure_is_inline_and_nothing_is_fetched(deep) -> None:
    _, _, page = deep
    sources = re.findall(r"<img [^>]*src=\"([^\"]*)\"", page)
    assert len(sources) == 4  # line plot, queries by phase, by layer, verification
    for src in sources:
        head, _, data = src.partition(",")
        assert head == "data:image/png;base64"
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)
    assert "<link" not in page and "<script" not in page


def test_the_contents_and_the_file_links_lead_somewhere(deep) -> None:
    folder, _, page = deep
    hrefs = re.findall(r"href='([^']*)'", page)
    anchors = [h[1:] for h in hrefs if h.startswith("#")]
    assert anchors and all(f"id='{a}'" in page for a in anchors)
    files = [h for h in hrefs if not h.startswith("#")]
    assert {"extraction.json", "recovered.safetensors", "line.json", "config.json"} <= set(files)
    assert all((folder / f).is_file() for f in files)


def test_the_line_plot_counts_kinks_by_layer(deep) -> None:
    folder, _, page = deep
    line = line_from_json(read_json(folder / "line.json"))
    per, n_out = kinks_by_layer(line)
    hidden = sum(per.values())
    assert hidden == int(np.count_nonzero(np.asarray(line.kind) == "hidden"))
    assert set(per) <= {0, 1, 2} and per[1] > 0
    made = ", ".join(f"{per[k]} made by layer-{k} neurons" for k in sorted(per) if k and per[k])
    assert f"placed {line.t.size} kinks: {hidden} where a hidden neuron switches ({made}" in page
    assert f"and {n_out} where an output's own ReLU" in page


def test_the_verification_shows_each_layers_weight_error(deep) -> None:
    _, record, page = deep
    ver = record["verification"]
    assert len(ver["per_layer_error_log2"]) == 3
    for i, v in enumerate(ver["per_layer_error_log2"]):
        assert f"W{i + 1}: {fmt_log2(v)}" in page
    assert f"max weight error:       {fmt_log2(ver['max_weight_error_log2'])}" in page
    assert 'alt="verification figures"' in page


def test_glassbox_report_rebuilds_the_same_page(deep, tmp_path: Path) -> None:
    folder, _, page = deep
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in folder.iterdir():
        if f.name != "report.html":
            (copy / f.name).write_bytes(f.read_bytes())
    code, printed = run("report", str(copy))
    assert code == 0 and printed.strip() == f"report: {copy / 'report.html'}"
    assert (copy / "report.html").read_text() == page


def test_a_failed_extraction_still_gets_an_honest_report(tmp_path: Path) -> None:
    out = tmp_path / "failed"
    code, printed = run("extract", SPEC, "--out", str(out), "--report", "--budget", "3000")
    assert code == 1, printed
    record = read_json(out / "extraction.json")
    page = (out / "report.html").read_text()
    assert not record["success"]
    assert "<span class='fail'>failed" in page and "<span class='ok'>" not in page
    assert html.escape(record["message"]) in page
    if record["net"] is None:
        assert "The attack recovered no network, so there is nothing to verify." in page


def test_without_a_truth_the_page_says_so(deep) -> None:
    _, record, _ = deep
    bare = {k: v for k, v in record.items() if k not in ("verification", "line")}
    page = build_extract_report(bare, None)
    assert "The truth is not known for this target" in page
    assert 'alt="verification figures"' not in page
    assert "The attack kept no line for this run." in page


def test_a_folder_without_line_json_says_why_there_is_no_plot(deep, tmp_path: Path) -> None:
    folder, _, _ = deep
    copy = tmp_path / "old"
    copy.mkdir()
    for f in folder.iterdir():
        if f.name not in ("report.html", "line.json"):
            (copy / f.name).write_bytes(f.read_bytes())
    assert run("report", str(copy))[0] == 0
    page = (copy / "report.html").read_text()
    assert "(line.json) are not in this folder" in page
    assert "href='line.json'" not in page and "href='line.png'" in page
