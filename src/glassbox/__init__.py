"""glassbox: see inside ReLU networks.

Two halves joined by one object: ``glassbox.toy`` trains toy models of
superposition, ``glassbox.extract`` reconstructs any ReLU network from queries,
and both speak :class:`glassbox.mlp.ReLUNet`.
"""

from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet

__all__ = ["GlassboxError", "ReLUNet", "__version__"]
__version__ = "0.1.0"
