"""Model reconstruction: recover a ReLU network of any depth from queries alone.

``extract(oracle, config)`` runs the whole attack and returns an
:class:`ExtractionResult` holding the recovered :class:`glassbox.mlp.ReLUNet`, the
discovered architecture and per-layer evidence.

The attack alone lives here: kinks on lines, the known prefix, witnesses, neurons, the
layer search, fill, precision, the sign methods (:mod:`glassbox.extract.signs`), the
self-check and the loop (:mod:`glassbox.extract.attack`). It may import the oracle package
and the ground floor; it never imports verify, toy, serve, sweep, report, demo or the CLI,
and it never sees a weight of the net it attacks.
"""

from glassbox.extract.attack import ExtractConfig, ExtractionResult, extract
from glassbox.extract.kinks import LineKinks, find_kinks

__all__ = ["ExtractConfig", "ExtractionResult", "LineKinks", "extract", "find_kinks"]
