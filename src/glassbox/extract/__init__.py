"""Model reconstruction: recover a ReLU network's weights from queries alone.

``extract(oracle, config)`` runs the whole attack on a one-hidden-layer net and returns
an :class:`ExtractionResult` holding the recovered :class:`glassbox.mlp.ReLUNet`.
"""

from glassbox.extract.attack import ExtractConfig, ExtractionResult, extract
from glassbox.extract.kinks import LineKinks, find_kinks

__all__ = ["ExtractConfig", "ExtractionResult", "LineKinks", "extract", "find_kinks"]
