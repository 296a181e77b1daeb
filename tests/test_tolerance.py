"""How the attack's thresholds scale with the answers' precision: closed forms at and beside each edge."""

import math

import pytest

from glassbox.extract.tolerance import (
    FLOAT32_EPS,
    FLOAT64_EPS,
    coarseness,
    is_coarse,
    loosen,
    step_fraction,
    tolerance_factor,
)


def test_coarseness_is_the_ratio_to_float64_and_never_below_one():
    assert coarseness(FLOAT64_EPS) == 1.0
    assert coarseness(FLOAT64_EPS / 8) == 1.0 and coarseness(0.0) == 1.0
    assert coarseness(FLOAT64_EPS * 2) == 2.0
    assert coarseness(FLOAT32_EPS) == 2.0**28


def test_coarse_paths_start_strictly_beyond_2_to_the_16():
    assert not is_coarse(FLOAT64_EPS)
    assert not is_coarse(FLOAT64_EPS * 2.0**16)  # 2^-36 is the last fine precision
    assert is_coarse(FLOAT64_EPS * 2.0**16 * (1 + 2**-40))
    assert is_coarse(FLOAT64_EPS * 2.0**17)
    assert is_coarse(FLOAT32_EPS)


def test_loosen_grows_as_the_cube_root_of_the_coarseness():
    assert loosen(1e-7, FLOAT64_EPS) == 1e-7
    assert loosen(3.0, FLOAT64_EPS * 2.0**30) == pytest.approx(3.0 * 2.0**10, rel=1e-14)
    assert loosen(1.0, FLOAT32_EPS) == pytest.approx(2.0 ** (28 / 3), rel=1e-14)
    assert loosen(2.0, 0.0) == 2.0


def test_steps_grow_as_the_fourth_root_and_stop_at_the_most():
    assert step_fraction(0.01, FLOAT64_EPS, 0.1) == 0.01
    assert step_fraction(0.01, FLOAT64_EPS * 2.0**16, 1.0) == pytest.approx(0.16, rel=1e-14)
    assert step_fraction(0.01, FLOAT64_EPS * 2.0**16, 0.1) == 0.1
    assert step_fraction(0.001, FLOAT32_EPS, 0.5) == pytest.approx(0.001 * 2.0**7, rel=1e-14)


def test_the_tolerance_factor_is_256_ulps_up_to_4_ulps_of_float64_and_8_beyond():
    assert tolerance_factor(FLOAT64_EPS) == 2.0**8
    assert tolerance_factor(4 * FLOAT64_EPS) == 2.0**8
    assert tolerance_factor(math.nextafter(4 * FLOAT64_EPS, 1.0)) == 2.0**3
    assert tolerance_factor(5 * FLOAT64_EPS) == 2.0**3
    assert tolerance_factor(FLOAT32_EPS) == 8.0
