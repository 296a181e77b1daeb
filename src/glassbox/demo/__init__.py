"""The main job, ``glassbox demo``: train a toy model, attack it as a black box, verify, report.

- :mod:`glassbox.demo.run`: :class:`DemoConfig`, :func:`run_demo`, the run folder and its report;
- :mod:`glassbox.demo.boundary`: where the attack meets the net (HTTP to a child
  ``glassbox serve`` process by default, or in-process).

May import everything below the CLI (report, serve, toy, extract, verify, oracle, the ground
floor); nothing but the CLI imports it.
"""

from glassbox.demo.run import (
    DemoConfig,
    DemoResult,
    check_out_dir,
    default_out_dir,
    paper_config,
    rebuild_report,
    run_demo,
)

__all__ = [
    "DemoConfig",
    "DemoResult",
    "check_out_dir",
    "default_out_dir",
    "paper_config",
    "rebuild_report",
    "run_demo",
]
