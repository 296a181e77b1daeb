"""Model reconstruction: recover a ReLU network of any depth from queries alone.

``extract(oracle, config)`` runs the whole attack and returns an
:class:`ExtractionResult` holding the recovered :class:`glassbox.mlp.ReLUNet`, the
discovered architecture and per-layer evidence.
"""

from glassbox.extract.attack import ExtractConfig, ExtractionResult, extract
from glassbox.extract.kinks import LineKinks, find_kinks

__all__ = ["ExtractConfig", "ExtractionResult", "LineKinks", "extract", "find_kinks"]
