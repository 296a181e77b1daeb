"""The demo attacks across a real process boundary by default, and says which boundary it used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import glassbox.demo.boundary as boundary
from conftest import TINY_DEMO, run_cli
from glassbox.config import config_to_dict
from glassbox.io import write_json


def test_the_default_demo_goes_over_http_and_both_sides_count_the_same(
    demo_run: tuple[Path, int, str, str],
) -> None:
    out, code, _, stderr = demo_run
    assert code == 0, stderr
    ex = json.loads((out / "extraction.json").read_text())
    assert ex["boundary"] == "http" and ex["service_queries"] == ex["queries"] > 0
    assert "over HTTP" in stderr and "served at http://127.0.0.1:" in stderr
    assert "The attack reached the network only over HTTP" in (out / "report.html").read_text()


@pytest.mark.parametrize("serve_installed", [True, False])
def test_in_process_on_request_or_without_the_serve_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve_installed: bool
) -> None:
    monkeypatch.setattr(boundary, "can_serve", lambda: serve_installed)
    config = tmp_path / "tiny.json"
    write_json(config, config_to_dict(TINY_DEMO))
    flags = ["--in-process"] if serve_installed else []
    code, _, stderr = run_cli("demo", "--config", str(config), "--out", str(tmp_path / "r"), *flags)
    assert code == 0, stderr
    ex = json.loads((tmp_path / "r" / "extraction.json").read_text())
    assert ex["boundary"] == "in-process" and "service_queries" not in ex
    assert ("serve extra is not installed" in stderr) != serve_installed
    assert "shared one Python process" in (tmp_path / "r" / "report.html").read_text()
