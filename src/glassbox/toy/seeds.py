"""The run's random streams: one seed, independent streams for initial weights, data and evaluation."""

from __future__ import annotations

import numpy as np
import torch

from glassbox.toy.config import ToyConfig
from glassbox.toy.models import init_params

# Independent random streams derived from the one seed.
STREAM_INIT, STREAM_DATA, STREAM_EVAL = 0, 1, 2


def derive_seed(seed: int, stream: int, restart: int = 0) -> int:
    """A 63-bit seed for one random stream of one restart of a run."""
    state = np.random.SeedSequence([seed, stream, restart]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def initial_params(config: ToyConfig, restart: int) -> dict[str, torch.Tensor]:
    """Restart ``restart``'s initial weights (one instance, on the CPU): the same in every run that has it."""
    gen = torch.Generator().manual_seed(derive_seed(config.seed, STREAM_INIT, restart))
    return init_params(config.kind, 1, config.n_features, config.n_hidden, gen, config.init_scale)
