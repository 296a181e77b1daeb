"""Small grids and comparisons shared by the sweep tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# 6 features, 4 neurons, three sparsities batched per point: well under a second a point.
TINY_TRAIN = """
job = "train"
name = "tiny-train"
[fixed]
n_features = 6
n_hidden = 4
steps = {steps}
batch = 128
eval_samples = 1024
[axes]
sparsity = [0.0, 0.7, 0.9]
seed = {seeds}
"""

TINY_EXTRACT = """
job = "extract"
name = "tiny-extract"
[[axes]]
target = ["random:6-5-1", "random:5-4-3-1"]
seed = [0, 1]
[[axes]]
target = ["random:6-5-1"]
defence = ["float32", "round:6"]
seed = [0]
"""

#: The files that must agree between two runs of a point (the rest hold timings).
EXACT_FILES = ("weights.safetensors", "recovered.safetensors", "analysis.json", "config.json")


def content(path: Path) -> Any:
    """A file's content to compare: tensors and metadata of safetensors (whose header order
    varies from process to process), else the bytes."""
    if path.suffix != ".safetensors":
        return path.read_bytes()
    from glassbox.io import read_safetensors

    tensors, metadata = read_safetensors(path)
    return metadata, {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in sorted(tensors.items())}


def write_grid(folder: Path, name: str, text: str) -> Path:
    """Write a grid file and return its path."""
    path = folder / name
    path.write_text(text)
    return path


def train_grid(folder: Path, seeds: list[int], steps: int = 200) -> Path:
    """The tiny train grid with the given seeds and steps."""
    return write_grid(folder, "train.toml", TINY_TRAIN.format(steps=steps, seeds=seeds))


def results(out: Path) -> dict[str, Any]:
    """Per point id: its record without timings, and the bytes of its exact files."""
    found = {}
    for path in sorted((out / "points").glob("*/result.json")):
        record = json.loads(path.read_text())
        record.pop("timing")
        files = {n: content(path.parent / n) for n in EXACT_FILES if (path.parent / n).is_file()}
        found[record["id"]] = (record, files)
    return found
