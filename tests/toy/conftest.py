"""Markers of the toy-model tests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register ``cuda``: tests that run only where torch sees a CUDA device."""
    config.addinivalue_line("markers", "cuda: runs on a CUDA device when one is present")
