"""The reconstruction held against the truth: the one package that sees both nets' weights.

- :mod:`glassbox.verify.compare`: :func:`verify` (weight and functional error, bounds) and the
  log2 figures it reports;
- :mod:`glassbox.verify.align`: matching recovered neurons to true ones (permutation, scale);
- :mod:`glassbox.verify.inputs`: the inputs the functional error is sampled on.

May import only the ground floor (mlp, io, config, errors); never the attack, toy or oracle.
"""

from glassbox.verify.compare import Verification, fmt_log2, log2_error, verify

__all__ = ["Verification", "fmt_log2", "log2_error", "verify"]
