"""Know the oracle before attacking it: finiteness, precision, noise, labels, piecewise linearity.

A cheap first phase (a few hundred queries; a few thousand for noisy answers) tells:

- whether answers are finite (a NaN or an infinity stops the attack at once);
- whether repeated queries agree; if not, the noise's standard deviation, and how many
  repeats an averaged answer needs to be usable;
- for deterministic answers, their precision: float64, float32, or ``k`` significant
  decimal digits;
- whether they are labels (integers, constant between jumps along every line);
- whether they are piecewise linear: along short windows of lines, a ReLU net's second
  differences vanish except where a kink falls inside; a smooth net (tanh, sigmoid,
  softplus) curves in nearly every window;
- whether they are probabilities: softmax rows (non-negative, summing to 1) or curved
  answers in (0, 1) with straight logits (:mod:`glassbox.oracle.logits`). Then ``eps`` is
  the log-ratios' precision and the attack is stopped: ``logit_view(oracle, profile.head())``
  is what to attack (``glassbox extract`` does).

The verdict is an :class:`AnswerProfile`: the relative precision the attack's tolerances
derive from, or the one-line reason it must not start.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.oracle.core import NonFiniteAnswer, Oracle, round_significant
from glassbox.oracle.logits import (
    Head,
    best_reference,
    log_ratios,
    logit_view,
    safe_scale,
    saturated,
    sigmoid_answers,
    softmax_rows,
    tiny_for,
    underflowed,
    view_precision,
)
from glassbox.oracle.windows import curved_share, steps_only, windows

Array = NDArray[np.float64]

# Gaussian points asked twice (repeatability), and how often a few are asked for sigma.
POINTS = 16
NOISE_POINTS = 4
NOISE_COPIES = 16
# Answers coarser than this (relative) cannot place kinks well enough for the witnesses'
# slopes: the attack stops with the reason instead of flailing. (Measured: float32 and 8
# digits, 2^-24, extract shallow nets; 6 digits, 2^-17.6, never did.)
COARSEST = 2.0**-22
# Noisy answers are averaged down to this relative precision (float32's).
AVERAGE_TO = 2.0**-24
# The most repeats an averaged answer may take (noise shrinks as their square root).
MAX_REPEATS = 256
# An answer's error bound, in standard deviations of its noise.
NOISE_BOUND = 8.0
# Share of curved windows above which the target is not piecewise linear.
CURVED_SHARE = 0.5

# How far the attack's lines reach, in units of the probe's Gaussian inputs: a layer's
# lines end about 5 times further out (4 input scales per unit of sqrt(d), from a Gaussian
# start). Probabilities are attacked at an input scale small enough that those ends stay
# clear of a class's underflow. A second look at a layer goes 16 times further
# (glassbox.extract.loop.EXTRA_REACH) and may meet it: the view then stops with the reason.
# (Measured: covering the second look too shrinks the scale so far that lines miss neurons.)
REACH = 8.0
SHRINK, SHRINKS = 8.0, 6

FLOAT64_EPS = 2.0**-52
# Half an ulp: float32 answers computed in float64 then rounded are this close.
FLOAT32_EPS = 2.0**-24


@dataclass(frozen=True)
class AnswerProfile:
    """What the answers are worth: their kind, relative precision, and whether to go on."""

    kind: str
    eps: float
    scale: float
    sigma: float = 0.0
    digits: int | None = None
    repeats: int = 1
    queries: int = 0
    curved_share: float | None = None
    stop: str | None = None
    base: str | None = None
    classes: int | None = None
    reference: int | None = None
    attack_view: bool = False
    input_scale: float | None = None

    def head(self) -> Head | None:
        """The classifier head the answers come through (None: raw scores)."""
        return view_head(asdict(self))

    def describe(self) -> str:
        """One line for the user, e.g. ``float32 answers (relative precision 2^-24)``."""
        what = {
            "float64": "float64 answers",
            "float32": "float32 answers",
            "digits": f"answers rounded to {self.digits} significant digits",
            "noisy": f"noisy answers (sigma {self.sigma:.2g})",
            "labels": "labels only",
            "constant": "a constant answer",
            "not-finite": "non-finite answers",
            "unknown": "not known (the probe did not finish)",
            "softmax": f"{self.base} softmax probabilities over {self.classes} classes, "
            f"read as log-ratios to class {self.reference}",
            "sigmoid": f"{self.base} sigmoid probabilities, read as their logits",
        }.get(self.kind, self.kind)
        if self.kind in ("labels", "constant", "not-finite", "unknown"):
            return what
        extra = f", each averaged over {self.repeats} repeats" if self.repeats > 1 else ""
        return f"{what} (relative precision 2^{math.log2(self.eps):.1f}{extra})"

    def to_json(self) -> dict[str, Any]:
        """The profile as a JSON object."""
        return {
            **asdict(self),
            "eps_log2": math.log2(self.eps) if self.eps > 0 else None,
            "description": self.describe(),
        }


def view_head(answers: dict[str, Any]) -> Head | None:
    """From a profile's JSON: the head whose logit view is piecewise linear (None: no such view)."""
    if not answers.get("attack_view"):
        return None
    tiny = tiny_for(FLOAT32_EPS if answers.get("base") == "float32" else FLOAT64_EPS)
    return Head(answers["kind"], int(answers["classes"]), int(answers["reference"] or 0), tiny)


def profile_oracle(
    oracle: Oracle, rng: np.random.Generator, input_scale: float = 1.0
) -> AnswerProfile:
    """Probe ``oracle`` (see the module docstring); every query is counted as usual."""
    q0 = oracle.queries
    d0 = oracle.input_dim
    X = rng.normal(0.0, input_scale, size=(POINTS, d0))
    Y = oracle.query(np.vstack([X, X]))
    bad = _not_finite(Y)
    if bad is not None:
        return _stopped("not-finite", oracle, q0, f"answers contain {bad} at Gaussian inputs")
    first, again = Y[:POINTS], Y[POINTS:]
    scale = float(np.max(np.abs(Y)))
    if not np.array_equal(first, again):
        return _noisy(oracle, rng, X, scale, q0, input_scale)
    if np.all(first == first[0]):
        far = windows(oracle, rng, 4 * input_scale, 4 * input_scale, 1)
        if np.all(far == first[0]):
            return _stopped(
                "constant",
                oracle,
                q0,
                f"the black box answered {first[0].tolist()} at every probed input, near and "
                "far: a constant function has nothing to extract (a dead network, an output "
                "ReLU that is always off, or labels of one class)",
            )
        first = np.vstack([first, far.reshape(-1, first.shape[1])])
    if _integral(first) and oracle.output_dim == 1 and steps_only(oracle, rng, input_scale):
        return _stopped(
            "labels",
            oracle,
            q0,
            "labels only: the answers are class labels, constant between jumps; this attack "
            "needs real-valued scores (logits or probabilities)",
        )
    kind, eps, digits = _precision(first)
    if eps > COARSEST:
        return _stopped(
            kind,
            oracle,
            q0,
            f"answers are rounded to {digits} significant digits: too coarse for the kink "
            f"search (it needs about {_digits_needed()} significant digits, relative "
            f"precision 2^{math.log2(COARSEST):.0f})",
            eps=eps,
            scale=scale,
            digits=digits,
        )
    sums_to_one = softmax_rows(first, eps)
    curved = 1.0 if sums_to_one else curved_share(oracle, rng, input_scale, eps, 1)
    profile = AnswerProfile(
        kind, eps, scale, digits=digits, queries=oracle.queries - q0, curved_share=curved
    )
    if sums_to_one or ((curved >= CURVED_SHARE or saturated(first)) and sigmoid_answers(first)):
        kind = "softmax" if sums_to_one else "sigmoid"
        ref = best_reference(first) if sums_to_one else 0
        head = Head(kind, first.shape[1], ref, tiny_for(eps))
        return _probabilities(oracle, rng, input_scale, profile, head, first, q0)
    return _judge_linearity(profile)


def _probabilities(
    oracle: Oracle,
    rng: np.random.Generator,
    input_scale: float,
    raw: AnswerProfile,
    head: Head,
    P: Array,
    q0: int,
) -> AnswerProfile:
    """Probabilities: is the map below the head (log-ratios or logits) piecewise linear?"""
    ref = head.reference if head.kind == "softmax" else None
    profile = replace(raw, kind=head.kind, base=raw.kind, classes=head.classes, reference=ref)
    scale, P = _unsaturated(oracle, rng, head, input_scale, P)
    if scale is None:
        return replace(
            profile,
            queries=oracle.queries - q0,
            stop=f"{head.kind} probabilities that underflow (or saturate) even at the origin "
            f"and at inputs of scale {input_scale * SHRINK**-SHRINKS:.2g}: their logs are lost",
        )
    eps = view_precision(P, head, raw.eps)
    profile = replace(profile, input_scale=scale)
    try:
        curved = curved_share(logit_view(oracle, head), rng, scale, eps, 1)
    except NonFiniteAnswer as exc:
        return replace(profile, queries=oracle.queries - q0, stop=f"probing the logits: {exc}")
    what = "log-ratios of its softmax" if head.kind == "softmax" else "logits of its sigmoid"
    profile = replace(
        profile,
        eps=eps,
        scale=float(np.max(np.abs(log_ratios(P, head)))),
        queries=oracle.queries - q0,
        curved_share=curved,
    )
    if curved >= CURVED_SHARE:
        return replace(
            profile,
            stop=f"the target is not piecewise linear, not even the {what}: {curved:.0%} of "
            "short windows along lines curve; the net below the "
            f"{head.kind} is not a ReLU network (tanh, sigmoid or softplus?)",
        )
    return replace(
        profile,
        attack_view=True,
        stop=f"{profile.describe()}: the attack runs on the {what}, not on the probabilities; "
        "attack logit_view(oracle, profile.head()) (glassbox extract does it by itself)",
    )


def _noisy(
    oracle: Oracle, rng: np.random.Generator, X: Array, scale: float, q0: int, input_scale: float
) -> AnswerProfile:
    """Answers that differ on repeats: estimate sigma, then the repeats averaging needs."""
    copies = np.repeat(X[:NOISE_POINTS], NOISE_COPIES, axis=0)
    Y = oracle.query(copies).reshape(NOISE_POINTS, NOISE_COPIES, -1)
    bad = _not_finite(Y)
    if bad is not None:
        return _stopped("not-finite", oracle, q0, f"answers contain {bad} at Gaussian inputs")
    sigma = float(np.sqrt(np.mean(np.var(Y, axis=1, ddof=1))))
    # Tolerances need a bound on an answer's error, not its spread: NOISE_BOUND sigmas.
    rel = NOISE_BOUND * sigma / max(scale, 1e-300)
    repeats = max(1, math.ceil((rel / AVERAGE_TO) ** 2))
    if repeats > MAX_REPEATS:
        return _stopped(
            "noisy",
            oracle,
            q0,
            f"answers carry noise of sigma {sigma:.2g} ({NOISE_BOUND:g} sigma is "
            f"2^{math.log2(rel):.1f} of their scale {scale:.3g}): averaging would need {repeats} repeats per query, more than "
            f"{MAX_REPEATS}; too noisy for the kink search",
            eps=rel,
            scale=scale,
            sigma=sigma,
        )
    eps = rel / math.sqrt(repeats)
    curved = curved_share(oracle, rng, input_scale, eps, repeats)
    profile = AnswerProfile(
        "noisy",
        eps,
        scale,
        sigma=sigma,
        repeats=repeats,
        queries=oracle.queries - q0,
        curved_share=curved,
    )
    return _judge_linearity(profile)


def _judge_linearity(profile: AnswerProfile) -> AnswerProfile:
    share = profile.curved_share or 0.0
    if share < CURVED_SHARE:
        return profile
    return replace(
        profile,
        stop=(
            f"the target is not piecewise linear: {share:.0%} of short windows along lines "
            "curve (a ReLU network is straight between kinks); not a ReLU network (tanh, "
            "sigmoid or softplus?)"
        ),
    )


def _unsaturated(
    oracle: Oracle, rng: np.random.Generator, head: Head, input_scale: float, P: Array
) -> tuple[float | None, Array]:
    """The largest input scale (up to ``input_scale``) at which the attack's lines, out to
    :data:`REACH` times it, keep the view within its limit; answers there (None: no scale)."""
    d = oracle.input_dim
    s = input_scale
    for _ in range(SHRINKS):
        Y = oracle.query(np.vstack([np.zeros((1, d)), rng.normal(0.0, s, size=(POINTS, d))]))
        if not np.any(underflowed(Y, head)):
            V = log_ratios(Y, head)
            safe = min(input_scale, safe_scale(V[0], V[1:], s, head, REACH))
            if safe >= s:
                return s, Y[1:]
            if safe > 0:
                Y = oracle.query(rng.normal(0.0, safe, size=(POINTS, d)))
                if not np.any(underflowed(Y, head)):
                    return safe, Y
        s /= SHRINK
    return None, P


def _stopped(
    kind: str,
    oracle: Oracle,
    q0: int,
    reason: str,
    *,
    eps: float = 1.0,
    scale: float = 0.0,
    sigma: float = 0.0,
    digits: int | None = None,
) -> AnswerProfile:
    return AnswerProfile(
        kind,
        eps,
        scale,
        sigma=sigma,
        digits=digits,
        queries=oracle.queries - q0,
        stop=reason,
    )


def _not_finite(Y: Array) -> str | None:
    """'NaN' or 'infinity' when some answer is, else None."""
    if np.any(np.isnan(Y)):
        return "NaN"
    if np.any(np.isinf(Y)):
        return "infinity"
    return None


def _integral(Y: Array) -> bool:
    return bool(np.all(np.round(Y) == Y) and np.all(np.abs(Y) < 2.0**20))


def _precision(Y: Array) -> tuple[str, float, int | None]:
    """(kind, relative precision, digits) of deterministic answers, from their values alone."""
    v = Y[Y != 0.0]
    if v.size == 0:
        return "float64", FLOAT64_EPS, None
    for k in range(1, 16):
        if np.array_equal(round_significant(v, k), v):
            return "digits", 0.5 * 10.0 ** (1 - k), k
    if np.array_equal(v.astype(np.float32).astype(np.float64), v):
        return "float32", FLOAT32_EPS, None
    return "float64", FLOAT64_EPS, None


def _digits_needed() -> int:
    return math.ceil(-math.log10(2 * COARSEST)) + 1
