"""Grids expanded by hand: products, pooled blocks, duplicates, overrides of axes and settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from glassbox.errors import GlassboxError
from glassbox.sweep.grid import load_grid, parse_grid, parse_value


def _axes(grid):
    return [dict(p.axes) for p in grid.points()]


def test_axes_multiply_and_fixed_settings_reach_every_point():
    grid = parse_grid(
        {
            "job": "extract",
            "fixed": {"target": "random:4-3-1", "verify_samples": 64},
            "axes": {"seed": [0, 1, 2], "defence": ["float64", "float32"]},
        },
        "g",
        None,
    )
    assert grid.name == "g" and grid.job == "extract"
    assert _axes(grid) == [
        {"seed": s, "defence": d} for s in (0, 1, 2) for d in ("float64", "float32")
    ]
    assert all(
        p.config.target == "random:4-3-1" and p.config.verify_samples == 64 for p in grid.points()
    )
    assert grid.to_json() == {
        "job": "extract",
        "name": "g",
        "fixed": {"target": "random:4-3-1", "verify_samples": 64},
        "axes": [{"seed": [0, 1, 2], "defence": ["float64", "float32"]}],
    }


def test_blocks_pool_and_a_point_met_twice_is_kept_once():
    grid = parse_grid(
        {"job": "extract", "name": "pool", "axes": [{"seed": [0, 1]}, {"seed": [1, 2]}]}, "x", None
    )
    assert grid.name == "pool" and _axes(grid) == [{"seed": 0}, {"seed": 1}, {"seed": 2}]
    assert len({p.id for p in grid.points()}) == 3


def test_a_grid_without_axes_is_one_point_of_its_fixed_settings():
    grid = parse_grid({"job": "extract", "fixed": {"seed": 4}}, "one", None)
    assert grid.axes == ({},) and [p.config.seed for p in grid.points()] == [4]
    assert parse_grid({"job": "extract", "axes": []}, "none", None).axes == ({},)


def test_overrides_pin_or_replace_axes_and_a_list_makes_a_new_axis():
    def data():
        return {"job": "extract", "fixed": {"seed": 1}, "axes": {"defence": ["float64", "float32"]}}

    assert _axes(parse_grid(data(), "g", {"defence": "float32"})) == [{"defence": "float32"}]
    widened = parse_grid(data(), "g", {"seed": [5, 6]})
    assert widened.fixed == {} and _axes(widened) == [
        {"defence": d, "seed": s} for d in ("float64", "float32") for s in (5, 6)
    ]
    fixed = parse_grid(data(), "g", {"verify_samples": 32})
    assert fixed.fixed == {"seed": 1, "verify_samples": 32}
    assert [p.config.verify_samples for p in fixed.points()] == [32, 32]
    fresh = parse_grid({"job": "extract", "axes": []}, "g", {"seed": [0, 1]})
    assert _axes(fresh) == [{"seed": 0}, {"seed": 1}]
    mine = data()
    parse_grid(mine, "g", {"seed": [5, 6], "verify_samples": 32})
    assert mine == data()  # the caller's tables are never edited


def test_a_bad_point_names_its_axis_values_or_the_fixed_settings():
    with pytest.raises(GlassboxError, match=r"grid g, point seed=-1: seed must be an integer >= 0"):
        parse_grid({"job": "extract", "axes": {"seed": [0, -1]}}, "g", None).points()
    with pytest.raises(GlassboxError, match=r"grid g, point fixed settings: seed must be"):
        parse_grid({"job": "extract", "fixed": {"seed": -1}}, "g", None).points()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"job": "extract", "fixed": [1]}, r"\[fixed\] and \[axes\] must be tables"),
        ({"job": "extract", "axes": 3}, r"\[fixed\] and \[axes\] must be tables"),
        ({"job": "extract", "axes": [3]}, r"each \[\[axes\]\] entry must be a table"),
        ({"job": "extract", "axes": {"seed": []}}, "axis seed must be a non-empty list"),
        ({"job": "plot"}, "unknown job kind 'plot'"),
        ({"job": "extract", "jobs": 1}, r"unknown top-level key\(s\) jobs"),
    ],
)
def test_bad_grids_say_what_is_wrong(data, message):
    with pytest.raises(GlassboxError, match=message):
        parse_grid(data, "g", None)


def test_an_override_of_an_unknown_setting_is_refused():
    with pytest.raises(GlassboxError, match="unknown setting or axis 'steps' for a extract grid"):
        parse_grid({"job": "extract"}, "g", {"steps": 3})


def test_set_values_read_as_toml_else_as_text():
    assert parse_value("3") == 3 and parse_value("1e-3") == 0.001
    assert parse_value("[0, 0.9]") == [0, 0.9] and parse_value('"paper"') == "paper"
    assert parse_value("random:4-3-1") == "random:4-3-1"


def test_grid_files_name_their_problem(tmp_path: Path):
    with pytest.raises(GlassboxError, match="no such grid file"):
        load_grid(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("job = \n")
    with pytest.raises(GlassboxError, match=r"bad.toml: not valid TOML \(") as info:
        load_grid(bad)
    assert "\n" not in str(info.value)
    good = tmp_path / "my-grid.toml"
    good.write_text('job = "extract"\n[axes]\nseed = [0, 1]\n')
    grid = load_grid(good, {"seed": 7})
    assert grid.name == "my-grid" and _axes(grid) == [{"seed": 7}]
