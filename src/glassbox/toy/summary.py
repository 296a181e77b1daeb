"""The headline numbers of a toy model instance (``analysis.json``), from its weights alone."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from glassbox.toy.analysis import (
    FEATURE_CLASSES,
    READ_THRESHOLD,
    asymmetric_motifs,
    feature_computation,
    neuron_census,
)
from glassbox.toy.geometry import (
    dimensionality,
    dimensions_per_feature,
    f64,
    feature_norms,
    superposition,
)


def summarize(
    W1: ArrayLike,
    W2: ArrayLike,
    b: ArrayLike,
    signed_inputs: bool = True,
    target: str = "abs",
    hidden_relu: bool = True,
    threshold: float = READ_THRESHOLD,
    init: tuple[ArrayLike, ArrayLike] | None = None,
) -> dict[str, Any]:
    """The headline numbers for one instance: neuron roles, feature classes, features per neuron, motifs.

    ``features_per_neuron_*`` count learned reads of neurons that learned something;
    ``leftover_reads_mean`` is the mean number of large weights per live neuron that are
    still at their initial value (0 without ``init``).
    """
    census = neuron_census(W1, W2, threshold, signed_inputs=signed_inputs, init=init)
    features = feature_computation(
        W1, W2, b, signed_inputs, target, hidden_relu, threshold, init=init
    )
    roles = Counter(nr.role for nr in census)
    trained = [nr for nr in census if nr.role in ("monosemantic", "polysemantic")]
    alive = [nr for nr in census if nr.role != "dead"]
    reads = np.array([len(nr.reads) for nr in trained]) if trained else np.zeros(1)
    leftovers = np.array([len(nr.leftovers) for nr in alive]) if alive else np.zeros(1)
    classes = Counter(f.how for f in features)
    # The leading run of features computed by dedicated neurons: "top features stay monosemantic".
    top_dedicated = next(
        (f.index for f in features if f.how not in ("pair", "redundant")), len(features)
    )
    summary: dict[str, Any] = {
        "neurons": len(census),
        "monosemantic": roles["monosemantic"],
        "polysemantic": roles["polysemantic"],
        "untrained": roles["untrained"],
        "dead": roles["dead"],
        "features_per_neuron_mean": float(reads.mean()),
        "features_per_neuron_max": int(reads.max()),
        "leftover_reads_mean": float(leftovers.mean()),
        "features": {c: classes[c] for c in FEATURE_CLASSES},
        "features_computed": sum(classes[c] for c in ("pair", "redundant", "superposition")),
        "top_features_dedicated": int(top_dedicated),
    }
    if hidden_relu and signed_inputs:
        motifs = asymmetric_motifs(W1, W2, threshold, init=init)
        summary["asymmetric_motifs"] = len(motifs)
        summary["asymmetric_motifs_with_inhibitor"] = sum(bool(m.inhibitors) for m in motifs)
    return summary


def summarize_tied(W: ArrayLike, b: ArrayLike) -> dict[str, Any]:
    """The earlier sections' statistics for ``W (m, n)``: norms, superposition, D_i and D*."""
    norms = feature_norms(W)
    return {
        "feature_norms": norms.tolist(),
        "superposition": superposition(W).tolist(),
        "dimensions_per_feature": dimensions_per_feature(W).tolist(),
        "dimensionality": dimensionality(W),
        "features_represented": int((norms > 0.5).sum()),
        "bias": f64(b).tolist(),
    }


def as_dicts(items: list[Any]) -> list[dict[str, Any]]:
    """Dataclass records (neurons, features, motifs) as plain dicts for JSON."""
    return [asdict(item) for item in items]
