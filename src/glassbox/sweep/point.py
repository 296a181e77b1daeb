"""A point of a sweep: one run's job kind, full config and name, with an id stable across runs."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from glassbox.config import config_to_dict


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its job kind, its full config, and the axis values that name it."""

    job: str
    config: Any  # ToyConfig for "train", ExtractJob for "extract"
    axes: tuple[tuple[str, Any], ...]
    id: str
    name: str


def point_id(job: str, config: Any) -> str:
    """A stable 12-hex-digit name of a point's full config: the same settings, the same id."""
    text = json.dumps({"job": job, "config": config_to_dict(config)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def make_point(job: str, config: Any, axes: tuple[tuple[str, Any], ...]) -> Point:
    """A :class:`Point` with its id and a folder name readable by people (axis values, then id)."""
    pid = point_id(job, config)
    slug = "_".join(f"{k}={v}" for k, v in axes)
    slug = re.sub(r"[^A-Za-z0-9._=+-]+", "-", slug)[:80].strip("-")
    return Point(job, config, axes, pid, f"{slug}-{pid}" if slug else pid)
