"""Shared fixtures: one reduced demo run, made once per test session."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import settings

from glassbox.cli import main
from glassbox.config import config_to_dict
from glassbox.demo.run import DEFAULT_TOY, PAPER_TOY, DemoConfig
from glassbox.io import write_json

# Hypothesis: the same examples on every run and every machine, and no example database, so a
# run never fails on an example an earlier run stored. `HYPOTHESIS_PROFILE=explore` (by hand)
# draws fresh examples; a failure found that way becomes an @example in the test.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Seconds, not minutes: 6 features in 4 neurons, a few hundred steps of a small batch.
TINY_DEMO = DemoConfig(
    toy=replace(
        DEFAULT_TOY,
        n_features=6,
        n_hidden=4,
        sparsity=(0.7,),
        steps=300,
        batch=256,
        eval_samples=2048,
    ),
    verify_samples=256,
)


# The paper's shape (100 features, 40 neurons) trained briefly: the report's paper-size layout,
# in seconds rather than the minutes of `glassbox demo --paper-size`.
PAPER_LIKE_DEMO = DemoConfig(
    toy=replace(PAPER_TOY, steps=300, anneal_steps=150, restarts=1, batch=256, eval_samples=2048),
    verify_samples=256,
)


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the glassbox CLI in-process; return (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str, str]:
    """``glassbox demo`` on TINY_DEMO: (run dir, exit status, stdout, stderr)."""
    root = tmp_path_factory.mktemp("demo")
    config = root / "tiny.json"
    write_json(config, config_to_dict(TINY_DEMO))
    out = root / "run"
    code, stdout, stderr = run_cli("demo", "--config", str(config), "--out", str(out))
    return out, code, stdout, stderr


@pytest.fixture(scope="session")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``glassbox demo`` on PAPER_LIKE_DEMO; the run directory (exit status 0 or 1 both kept)."""
    root = tmp_path_factory.mktemp("paper")
    config = root / "paper.json"
    write_json(config, config_to_dict(PAPER_LIKE_DEMO))
    out = root / "paper-run"
    code, _, stderr = run_cli("demo", "--config", str(config), "--out", str(out))
    assert code in (0, 1) and (out / "report.html").is_file(), stderr
    return out
