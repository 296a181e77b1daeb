"""The attack sees an oracle and nothing else: it must not reach the target's weights."""

import ast
from pathlib import Path

import numpy as np
import pytest

import glassbox.extract
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import (
    FunctionOracle,
    float32_outputs,
    label_only,
    net_oracle,
    noisy,
    rounded,
)
from glassbox.oracle.onnx_model import OnnxOracle

EXTRACT = Path(glassbox.extract.__file__).parent
# Ways around an oracle's public interface to the function or net behind it.
FORBIDDEN_MODULES = (
    "glassbox.toy",
    "glassbox.onnx_io",
    "safetensors",
    "onnx",
    "gc",
    "inspect",
    "ctypes",
    "pickle",
)
FORBIDDEN_ATTRS = {
    "__closure__",
    "__self__",
    "__dict__",
    "__globals__",
    "__code__",
    "__func__",
    "__wrapped__",
    "cell_contents",
}
FORBIDDEN_ORACLE_NAMES = {"net_oracle", "FunctionOracle", "OnnxOracle"}
MLP_ALLOWED = {"ReLUNet", "Array", "parse_spec"}  # building the recovered net is fine


def violations(source: str) -> list[str]:
    """Every way the module could reach a target's weights other than through ``query``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                f"import {a.name}" for a in node.names if a.name.startswith(FORBIDDEN_MODULES)
            ]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            names = {a.name for a in node.names}
            if mod.startswith(FORBIDDEN_MODULES):
                found.append(f"from {mod} import")
            if mod == "glassbox.mlp" and names - MLP_ALLOWED:
                found.append(f"from glassbox.mlp import {sorted(names - MLP_ALLOWED)}")
            if mod.startswith("glassbox.oracle") and names & FORBIDDEN_ORACLE_NAMES:
                found.append(f"from {mod} import {sorted(names & FORBIDDEN_ORACLE_NAMES)}")
        elif isinstance(node, ast.Attribute):
            owner = node.value
            own = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            own = own or (isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "super")
            dunder = node.attr.startswith("__") and node.attr.endswith("__")
            if node.attr in FORBIDDEN_ATTRS or (
                node.attr.startswith("_") and not own and not dunder
            ):
                found.append(f"attribute .{node.attr} (line {node.lineno})")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "vars":
                found.append(f"vars() (line {node.lineno})")
            if node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) >= 2:
                name = node.args[1]
                if isinstance(name, ast.Constant) and str(name.value).startswith("_"):
                    found.append(f"{node.func.id} of a private name (line {node.lineno})")
    return found


@pytest.mark.parametrize(
    "source",
    [
        "w = oracle._FunctionOracle__f.__closure__[0].cell_contents",
        "from glassbox.mlp import ReLUNet\nnet = ReLUNet.load('target.safetensors')\nx = net._check_input",
        "import gc",
        "from glassbox.oracle.core import net_oracle",
        "f = getattr(oracle, '_ledger')",
        "y = vars(oracle)",
    ],
)
def test_the_scanner_catches_the_ways_around(source):
    assert violations(source)


def test_the_scanner_allows_ordinary_attack_code():
    source = (
        "from glassbox.mlp import ReLUNet\n"
        "from glassbox.oracle.core import Oracle, QueryBudgetExceeded\n"
        "class A:\n"
        "    def __init__(self, oracle):\n        self._oracle = oracle\n"
        "    def run(self):\n"
        "        with self._oracle.phase('x'):\n            y = self._oracle.query(None)\n"
        "        return ReLUNet([y]).weights, type(self).__name__\n"
    )
    assert violations(source) == []


def test_attack_modules_reach_the_target_only_through_query():
    paths = sorted(EXTRACT.rglob("*.py"))
    assert any(p.parent.name == "signs" for p in paths)  # the sign methods are scanned too
    for path in paths:
        assert violations(path.read_text()) == [], path.relative_to(EXTRACT)


def _oracles(tmp_path):
    net = ReLUNet.random("4-5-3", seed=0)
    yield net_oracle(net)
    yield FunctionOracle(net.forward, 4, 3)
    yield label_only(noisy(rounded(float32_outputs(net_oracle(net)), 5), 0.1))
    if __import__("importlib").util.find_spec("onnxruntime"):
        net.to_onnx(tmp_path / "n.onnx")
        yield OnnxOracle(tmp_path / "n.onnx")


def test_an_oracle_exposes_dimensions_and_counts_only(tmp_path):
    public = {"input_dim", "output_dim", "budget", "queries", "queries_by_phase", "phase", "query"}
    for oracle in _oracles(tmp_path):
        names = {n for n in dir(oracle) if not n.startswith("_")}
        assert names == public, type(oracle).__name__
        for name in names:
            assert not isinstance(getattr(oracle, name), ReLUNet | np.ndarray)
        for value in vars(oracle).values():
            assert not isinstance(value, ReLUNet | np.ndarray)
