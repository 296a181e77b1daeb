"""ToyConfig: everything needed to repeat a toy-model run, saved as ``config.json``."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.errors import GlassboxError
from glassbox.toy.kinds import KINDS, Kind, feature_probability, importance_vector

SCHEDULES = ("constant", "linear", "cosine")
#: "compiled" fuses each step with torch.compile (needs a C++ compiler, or triton on CUDA);
#: "eager" is the plain buffered step; "auto" compiles models big enough to gain from it.
#: Each trains an instance bit for bit the same in any batch; their bits differ.
KERNELS = ("auto", "compiled", "eager")

#: The paper's abs(x) sweep, as sparsity S = 1 - (1 - S): 1 - S in {1, .3, .1, .03, .01, .003, .001}.
PAPER_ABS_SPARSITY = (0.0, 0.7, 0.9, 0.97, 0.99, 0.997, 0.999)


@dataclass(frozen=True)
class ToyConfig:
    """A batched toy-model run: one instance per sparsity value, ``restarts`` seeds each."""

    model: str = "abs"
    n_features: int = 100
    n_hidden: int = 40
    sparsity: tuple[float | tuple[float, ...], ...] = PAPER_ABS_SPARSITY
    importance: float | tuple[float, ...] = 0.8
    steps: int = 10_000
    batch: int = 1024
    lr: float = 1e-3
    # One peak learning rate per sparsity value; overrides `lr` when given (see paper_recipe).
    lr_per_config: tuple[float, ...] | None = None
    weight_decay: float = 0.01
    schedule: str = "constant"
    warmup: int = 0
    # Density curriculum: start every instance at feature probability `anneal_from`
    # (1 - S) and move geometrically to its own over the first `anneal_steps` steps.
    anneal_from: float | None = None
    anneal_steps: int = 0
    restarts: int = 1
    seed: int = 0
    init_scale: float = 1.0
    eval_samples: int = 32_768
    device: str = "cpu"
    kernel: str = "auto"

    def __post_init__(self) -> None:
        # JSON gives lists; keep the dataclass hashable and comparable with tuples.
        def tup(v: Any) -> Any:
            return tuple(tup(e) for e in v) if isinstance(v, list | tuple) else float(v)

        object.__setattr__(self, "sparsity", tup(list(self.sparsity)))
        if isinstance(self.importance, list | tuple):
            object.__setattr__(self, "importance", tup(self.importance))
        if self.lr_per_config is not None:
            object.__setattr__(self, "lr_per_config", tup(self.lr_per_config))
        self.validate()

    def validate(self) -> None:
        """Raise a one-line GlassboxError for any value the trainer cannot use."""
        if self.model not in KINDS:
            raise GlassboxError(
                f"unknown model kind {self.model!r}; choose one of {', '.join(KINDS)}"
            )
        for name in ("n_features", "n_hidden", "steps", "batch", "restarts", "eval_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise GlassboxError(f"{name} must be a positive integer, got {value!r}")
        limit = self.kind.max_hidden_per_feature * self.n_features
        if self.n_hidden > limit:
            why = (
                "2n neurons already give every feature its ReLU(x), ReLU(-x) pair"
                if self.model == "abs"
                else "n dimensions already give every feature its own"
            )
            raise GlassboxError(
                f"{self.n_hidden} neurons is more than allowed for {self.model} with "
                f"{self.n_features} features (at most {limit}: {why}); lower --neurons"
            )
        if not self.sparsity:
            raise GlassboxError("give at least one sparsity value")
        for s in self.sparsity:
            if isinstance(s, tuple) and len(s) != self.n_features:
                raise GlassboxError(
                    f"a per-feature sparsity has {len(s)} values but there are {self.n_features} features"
                )
        self.probability()  # checks every S is in [0, 1)
        self.importance_vector()
        for name in ("lr", "init_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise GlassboxError(f"{name} must be a positive number, got {value}")
        if self.lr_per_config is not None:
            if len(self.lr_per_config) != self.n_configs:
                raise GlassboxError(
                    f"lr_per_config has {len(self.lr_per_config)} values for "
                    f"{self.n_configs} sparsity values; give one each"
                )
            if not all(math.isfinite(v) and v > 0 for v in self.lr_per_config):
                raise GlassboxError(
                    f"lr_per_config must be positive numbers, got {self.lr_per_config}"
                )
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise GlassboxError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.schedule not in SCHEDULES:
            raise GlassboxError(
                f"unknown lr schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}"
            )
        if not 0 <= self.warmup < self.steps:
            raise GlassboxError(f"warmup must be in [0, steps), got {self.warmup}")
        if self.anneal_from is not None:
            if not 0.0 < self.anneal_from <= 1.0:
                raise GlassboxError(
                    f"anneal_from is a feature probability 1 - S in (0, 1], got {self.anneal_from}"
                )
            # anneal_steps > steps stops training part way along the path (used for traces).
            if self.anneal_steps < 1:
                raise GlassboxError(
                    f"anneal_steps must be at least 1 with anneal_from, got {self.anneal_steps}"
                )
        if self.kernel not in KERNELS:
            raise GlassboxError(
                f"unknown kernel {self.kernel!r}; choose one of {', '.join(KERNELS)}"
            )
        if not self.device.startswith(("cpu", "cuda")):
            raise GlassboxError(f"unknown device {self.device!r}; use cpu or cuda")

    @property
    def kind(self) -> Kind:
        """The model kind's definition."""
        return KINDS[self.model]

    @property
    def n_configs(self) -> int:
        """Number of kept instances: one per sparsity value."""
        return len(self.sparsity)

    def probability(self) -> NDArray[np.float64]:
        """Feature probability ``1 - S`` per kept instance and feature, ``(configs, n)``."""
        rows = [
            np.broadcast_to(np.asarray(s, dtype=np.float64), (self.n_features,))
            for s in self.sparsity
        ]
        return feature_probability(np.stack(rows), self.n_features)

    def lr_vector(self) -> NDArray[np.float64]:
        """Peak learning rate per kept instance, ``(configs,)``."""
        if self.lr_per_config is None:
            return np.full(self.n_configs, self.lr)
        return np.asarray(self.lr_per_config, dtype=np.float64)

    def importance_vector(self) -> NDArray[np.float64]:
        """Importance per feature, ``(n,)``."""
        return importance_vector(self.importance, self.n_features)


#: Per-kind defaults: the paper's settings for each experiment.
DEFAULTS: dict[str, dict[str, Any]] = {
    # Computation in superposition: the abs(x) sparsity sweep.
    "abs": {"n_features": 100, "n_hidden": 40, "sparsity": PAPER_ABS_SPARSITY, "importance": 0.8},
    # The intro: 5 features in 2 dimensions at 0%, 80% and 90% sparsity.
    "relu-output": {"n_features": 5, "n_hidden": 2, "sparsity": (0.0, 0.8, 0.9), "importance": 0.9},
    "linear": {"n_features": 5, "n_hidden": 2, "sparsity": (0.0, 0.8, 0.9), "importance": 0.9},
    # The ReLU hidden layer section: n=10, m=5, I=0.75^i across its regimes.
    "relu-hidden": {
        "n_features": 10,
        "n_hidden": 5,
        "sparsity": (0.0, 0.7, 0.85, 0.88, 0.93, 0.97),
        "importance": 0.75,
    },
}


#: The paper recipe for the abs sweep (docs/toy_models.md): a learning rate set by the
#: density 1 - S, and the density curriculum from 1 - S = 0.3 over the first half.
RECIPE_DENSE_LR = 1e-2  # at 1 - S >= RECIPE_DENSE: reaches clean +/- pairs when dense
RECIPE_SPARSE_LR = 1e-3  # at 1 - S <= RECIPE_SPARSE: every neuron polysemantic
RECIPE_DENSE, RECIPE_SPARSE = 0.3, 0.001
RECIPE_ANNEAL_FROM = 0.3
RECIPES = ("none", "paper")


def recipe_lr(density: float) -> float:
    """The paper recipe's peak learning rate at feature probability ``density = 1 - S``.

    1e-2 down to 1 - S = 0.3, 1e-3 from 0.001 on, geometric in between (log lr linear in
    log density): 6.4e-3 at 0.1, 3.9e-3 at 0.03, 2.5e-3 at 0.01, 1.6e-3 at 0.003.
    """
    t = math.log(RECIPE_DENSE / density) / math.log(RECIPE_DENSE / RECIPE_SPARSE)
    if t <= 1e-9 or t >= 1.0 - 1e-9:  # the end points exactly, whatever 1 - S rounds to
        return RECIPE_DENSE_LR if t <= 1e-9 else RECIPE_SPARSE_LR
    return math.exp((1 - t) * math.log(RECIPE_DENSE_LR) + t * math.log(RECIPE_SPARSE_LR))


def paper_recipe(config: ToyConfig) -> ToyConfig:
    """``config`` with the paper recipe: a learning rate per sparsity and the density curriculum.

    Each instance gets :func:`recipe_lr` of its mean density, and every instance starts at
    ``1 - S = 0.3`` and moves geometrically to its own density over the first half of
    ``config.steps``. The result states every value, so ``config.json`` repeats the run.
    """
    density = config.probability().mean(axis=1)
    return replace(
        config,
        lr=RECIPE_DENSE_LR,
        lr_per_config=tuple(recipe_lr(float(p)) for p in density),
        anneal_from=RECIPE_ANNEAL_FROM,
        anneal_steps=max(1, config.steps // 2),
    )


def default_config(model: str, **changes: Any) -> ToyConfig:
    """The paper's settings for ``model``, with ``changes`` applied."""
    if model not in DEFAULTS:
        raise GlassboxError(f"unknown model kind {model!r}; choose one of {', '.join(KINDS)}")
    return replace(ToyConfig(), model=model, **{**DEFAULTS[model], **changes})
