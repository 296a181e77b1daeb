"""Short windows along lines: the probe's tests of piecewise linearity and of label steps.

A ReLU net's second differences vanish in a window unless a kink falls inside; a smooth
function curves in nearly every window; labels are constant in nearly every short one.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]

# Windows of the piecewise-linearity test: lines, windows per line, points per window.
LINES = 8
WINDOWS = 4
WINDOW_POINTS = 5
# In the ten times wider windows, the share that counts (dense kinks there look curved too).
WIDE_CURVED_SHARE = 0.9


def windows(
    oracle: Oracle, rng: np.random.Generator, input_scale: float, h: float, repeats: int
) -> Array:
    """Answers on ``LINES x WINDOWS`` windows of ``WINDOW_POINTS`` points ``h`` apart."""
    d0 = oracle.input_dim
    n = LINES * WINDOWS
    centres = rng.normal(0.0, input_scale, size=(n, d0))
    d = rng.normal(size=(n, d0))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    offsets = h * (np.arange(WINDOW_POINTS) - WINDOW_POINTS // 2)
    P = centres[:, None, :] + offsets[None, :, None] * d[:, None, :]
    P = np.repeat(P.reshape(-1, d0), repeats, axis=0)
    Y = oracle.query(P).reshape(n * WINDOW_POINTS, repeats, -1).mean(axis=1)
    return Y.reshape(n, WINDOW_POINTS, -1)


def steps_only(oracle: Oracle, rng: np.random.Generator, input_scale: float) -> bool:
    """Whether the answers are constant on nearly every short window (labels are)."""
    F = windows(oracle, rng, input_scale, 1e-3 * input_scale, 1)
    flat = np.all(F[:, :1] == F, axis=(1, 2))
    return bool(np.mean(flat) >= 0.75)


def curved_share(
    oracle: Oracle, rng: np.random.Generator, input_scale: float, eps: float, repeats: int
) -> float:
    """Share of short windows whose second differences all curve the same way, well above
    the rounding: a kink bends at most two of a window's three; a smooth function all.

    Two window sizes: one just wide enough that a smooth function's ``f'' h^2`` stands far
    above the rounding, and one ten times wider for functions that curve gently (small
    pre-activations keep a tanh net nearly straight). A deep ReLU net's dense kinks can look
    curved in wide windows too (measured: 41% for 100-200-200-200-10 in float32), so the wide
    windows count only when nearly all of them curve.
    """
    h = input_scale * min(1e-2, max(1e-4, 64 * math.sqrt(eps)))
    narrow = _curved_at(oracle, rng, input_scale, eps, repeats, h)
    wide = _curved_at(oracle, rng, input_scale, eps, repeats, 10 * h)
    return wide if wide >= WIDE_CURVED_SHARE else narrow


def _curved_at(
    oracle: Oracle,
    rng: np.random.Generator,
    input_scale: float,
    eps: float,
    repeats: int,
    h: float,
) -> float:
    F = windows(oracle, rng, input_scale, h, repeats)
    D = F[:, :-2] - 2 * F[:, 1:-1] + F[:, 2:]  # (n, 3, k)
    floor = 64 * eps * max(float(np.max(np.abs(F))), 1e-300)
    big = np.abs(D) > floor
    same = np.all(np.sign(D) == np.sign(D[:, :1]), axis=1)
    mag = np.abs(D)
    even = np.max(mag, axis=1) <= 4 * np.maximum(np.min(mag, axis=1), 1e-300)
    curved = np.any(np.all(big, axis=1) & same & even, axis=1)
    return float(np.mean(curved))
