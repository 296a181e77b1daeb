"""The numbers the extract report shows, read from the record ``glassbox extract`` writes.

Each function takes ``extraction.json``'s object (or the attack's line) and returns the
rows and lines the page prints, so the page and the file cannot disagree.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from glassbox.extract.kinks import HIDDEN, OUTPUT_RELU, LineKinks
from glassbox.verify.compare import fmt_log2, log2_error

LAYER_HEADER = (
    "layer",
    "neurons",
    "lines",
    "kinks",
    "witnesses",
    "rank-deficient witnesses",
    "incomplete rows",
    "sign method",
    "lowest sign confidence",
    "queries",
    "seconds",
)


def count_text(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, int | float) else "-"


def confidence_text(value: Any) -> str:
    return f"{float(value):.4f}" if isinstance(value, int | float) else "-"


def sample_total(ver: dict[str, Any]) -> int:
    """How many inputs the verification compared the two nets on."""
    return sum(int(d["n"]) for d in ver.get("per_distribution", {}).values())


def summary_lines(record: dict[str, Any]) -> list[str]:
    """The headline: target, verdict, architecture, queries, seconds, and the truth's verdict if known."""
    queries = int(record.get("queries") or 0)
    hint = (record.get("config") or {}).get("architecture")
    arch = record.get("architecture")
    how = "discovered from queries alone" if hint is None else f"the hint given was {hint}"
    arch = (
        f"{arch} ({how})" if arch else "not recovered" + (f" (hint given: {hint})" if hint else "")
    )
    lines = [
        f"target:                 {record.get('target', 'unknown')}",
        f"verdict:                {record.get('message', '')}",
        f"architecture:           {arch}",
        f"queries:                {queries:,} (2^{log2_error(max(queries, 1)):.1f})",
        f"seconds:                {float(record.get('seconds', 0.0)):.1f} (attack only)",
    ]
    answers = record.get("answers") or {}
    if answers.get("eps_log2") is not None:
        lines.append(
            f"answers:                {answers.get('kind')}, relative precision "
            f"2^{float(answers['eps_log2']):.1f} (measured before the attack)"
        )
    ver = record.get("verification")
    if ver:
        lines += [
            f"max weight error:       {fmt_log2(ver['max_weight_error_log2'])}",
            f"functional error:       max |f - f_hat| = {fmt_log2(ver['epsilon_log2'])} "
            f"on {sample_total(ver):,} inputs (delta = {ver['delta']:g})",
        ]
    return lines


def layer_rows(record: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per recovered hidden layer, in :data:`LAYER_HEADER`'s order."""
    rows: list[tuple[str, ...]] = []
    for layer in record.get("layers", []):
        evidence = layer.get("neuron_evidence", [])
        witnesses = [int(e.get("witnesses", 0)) for e in evidence]
        seen = f"{sum(witnesses):,} (fewest {min(witnesses)})" if witnesses else "-"
        rows.append(
            (
                str(layer.get("layer", "?")),
                count_text(layer.get("neurons")),
                count_text(layer.get("lines")),
                count_text(layer.get("kinks")),
                seen,
                count_text(layer.get("rank_deficient_witnesses")),
                count_text(layer.get("incomplete_rows")),
                str(layer.get("sign_method") or "-"),
                confidence_text(layer.get("lowest_sign_confidence")),
                count_text(layer.get("queries")),
                f"{float(layer['seconds']):.2f}" if "seconds" in layer else "-",
            )
        )
    return rows


def queries_by_layer(record: dict[str, Any]) -> dict[str, int]:
    """Queries per recovered layer, and the rest (asked outside any layer) under its phases' names."""
    out = {f"layer {layer['layer']}": int(layer["queries"]) for layer in record.get("layers", [])}
    rest = int(record.get("queries") or 0) - sum(out.values())
    if rest > 0:
        phases = record.get("queries_by_phase", {})
        outside = [p for p in ("probe", "check") if p in phases]
        if outside and sum(int(phases[p]) for p in outside) == rest:
            out[" and ".join("self-check" if p == "check" else p for p in outside)] = rest
        else:
            out["outside any layer"] = rest
    return out


def kinks_by_layer(line: LineKinks) -> tuple[Counter[int], int]:
    """Hidden kinks per recovered layer (0: not attributed to a recovered neuron), and output-ReLU kinks."""
    per = Counter(
        line.layer[k] if k < len(line.layer) else 0
        for k, kind in enumerate(line.kind)
        if kind == HIDDEN
    )
    return per, sum(kind == OUTPUT_RELU for kind in line.kind)


def evidence_row(j: int, e: dict[str, Any]) -> tuple[str, ...]:
    votes = e.get("votes")
    sign = e.get("sign")
    bar = e.get("error_bar")
    return (
        str(j),
        count_text(e.get("witnesses")),
        count_text(e.get("rank_deficient_witnesses")),
        count_text(e.get("known_inputs")),
        fmt_log2(log2_error(float(bar))) if isinstance(bar, int | float) else "-",
        "-" if sign is None else ("+1" if float(sign) > 0 else "-1"),
        f"{votes[0]} / {votes[1]}" if isinstance(votes, list) and len(votes) == 2 else "-",
        confidence_text(e.get("sign_confidence")),
    )


CHECK_NAMES = {
    "samples": "fresh queries compared with the reconstruction",
    "max_error": "max |f - f_hat| on them",
    "output_scale": "output scale (largest |f| seen)",
    "relative_error_log2": "that error relative to the output scale",
    "tolerance_log2": "tolerance on the relative error",
    "kinks_checked": "kinks checked against the recovered neurons",
    "unexplained_kinks": "kinks no recovered neuron explains",
    "unmeasured_weights": "outgoing weights never measured (an output on only where its neuron is off)",
}


def outputs_varying(active: int, total: int, shown: int) -> str:
    """How many outputs vary along the line, in words that read right for one output too."""
    if total == 1:
        return (
            "The output varies along the line."
            if active
            else "The output is constant along the line."
        )
    return f"{active} of the {total} outputs vary along the line; the plot draws the {shown} that vary most."


def check_value(key: str, value: Any) -> str:
    if not isinstance(value, int | float):
        return str(value)
    if key.endswith("_log2"):
        return fmt_log2(float(value))
    if key == "max_error":
        return fmt_log2(log2_error(float(value)))
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{float(value):.4g}"
