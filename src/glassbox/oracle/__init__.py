"""The black box as the attack sees it: ``query(X) -> Y``, counted, budgeted, row-capped.

- :mod:`glassbox.oracle.core`: the :class:`Oracle` protocol, counting, budgets, row caps,
  averaging, finiteness and the defences (float32, rounding, noise, labels);
- :mod:`glassbox.oracle.onnx_model`, :mod:`glassbox.oracle.http_client` and
  :mod:`glassbox.oracle.wire`: ONNX files and prediction services as oracles;
- :mod:`glassbox.oracle.probe`: what the answers are worth, measured before the attack;
- :mod:`glassbox.oracle.checkpoint`: the answer log that lets a killed attack resume;
- :mod:`glassbox.oracle.targets`: TARGET strings to an oracle and, where known, the truth.

May import only the ground floor (mlp, onnx_io, io, config, errors, extras); never the
attack, toy, verify or anything above them.
"""

from glassbox.oracle.core import Oracle

__all__ = ["Oracle"]
