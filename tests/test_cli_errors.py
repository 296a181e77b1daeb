"""Every user mistake ends in one line on stderr, exit 2, no traceback, and nothing written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_DEMO, run_cli
from glassbox.config import config_to_dict
from glassbox.io import write_json
from glassbox.mlp import ReLUNet

PROC = Path("/proc/glassbox-cannot-write-here")


def one_line_error(code: int, stderr: str, *needles: str) -> None:
    """Exit 2 and exactly one stderr line, a glassbox error naming every needle."""
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip("\n").splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("glassbox: error: "), stderr
    for needle in needles:
        assert needle in lines[0], (needle, stderr)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ----------------------------------------------------------------- extract
def test_extract_refuses_a_non_empty_out_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "demo-like"
    out.mkdir()
    (out / "report.html").write_text("a demo run's report")
    before = snapshot(out)
    code, _, err = run_cli("extract", "random:6-4-1", "--out", str(out), "--quiet")
    one_line_error(code, err, str(out), "--overwrite")
    # --overwrite replaces only a folder glassbox extract wrote (it holds extraction.json).
    code, _, err = run_cli("extract", "random:6-4-1", "--out", str(out), "--overwrite")
    one_line_error(code, err, "extraction.json", "refusing")
    assert snapshot(out) == before

    fresh = tmp_path / "x"
    assert run_cli("extract", "random:6-4-1", "--out", str(fresh), "--quiet")[0] == 0
    (fresh / "stale.txt").write_text("left from before")
    code, _, err = run_cli("extract", "random:6-4-1", "--out", str(fresh), "--seed", "1")
    one_line_error(code, err, "--overwrite")
    code, _, err = run_cli(
        "extract", "random:6-4-1", "--out", str(fresh), "--seed", "1", "--overwrite"
    )
    assert code == 0, err
    assert not (fresh / "stale.txt").exists() and (fresh / "extraction.json").is_file()


def test_an_unwritable_out_is_refused_before_any_work(tmp_path: Path) -> None:
    code, _, err = run_cli("extract", "random:6-4-1", "--out", str(PROC))
    one_line_error(code, err, "cannot write", "--out")
    assert "extracting" not in err  # refused before the attack started
    net = tmp_path / "n.safetensors"
    ReLUNet.random("4-3-1").save(net)
    code, _, err = run_cli("net", "new", "4-3-1", "--out", str(PROC / "n.safetensors"))
    one_line_error(code, err, "does not exist")
    code, _, err = run_cli("verify", str(net), str(net), "--out", str(PROC / "v.json"))
    one_line_error(code, err, "--out")
    file_as_folder = tmp_path / "a-file"
    file_as_folder.write_text("")
    code, _, err = run_cli("extract", "random:6-4-1", "--out", str(file_as_folder / "sub"))
    one_line_error(code, err, "is a file")


def test_demo_checks_its_out_before_training(tmp_path: Path) -> None:
    config = tmp_path / "tiny.json"
    write_json(config, config_to_dict(TINY_DEMO))
    code, _, err = run_cli("demo", "--config", str(config), "--out", str(PROC))
    one_line_error(code, err, "cannot write")


@pytest.mark.parametrize(
    "argv",
    [
        ("extract", "random:6-4-1", "--out", "{tmp}/x", "--seed", "-1"),
        ("net", "new", "4-3-1", "--out", "{tmp}/n.safetensors", "--seed", "-1"),
        ("demo", "--out", "{tmp}/d", "--seed", "-1"),
        ("train", "abs", "--out", "{tmp}/t", "--seed", "-1"),
        ("verify", "{tmp}/a", "{tmp}/b", "--seed", "-1"),
    ],
)
def test_a_negative_seed_is_a_usage_error(tmp_path: Path, argv: tuple[str, ...]) -> None:
    code, _, err = run_cli(*(a.format(tmp=tmp_path) for a in argv))
    one_line_error(code, err, "--seed", "-1", "--help")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["extract", "net"])
def test_a_net_too_large_for_memory_is_refused_with_its_size(tmp_path: Path, command: str) -> None:
    import tracemalloc

    spec = "100000-100000-1"
    argv = (
        ("extract", f"random:{spec}", "--out", str(tmp_path / "x"))
        if command == "extract"
        else ("net", "new", spec, "--out", str(tmp_path / "n.safetensors"))
    )
    tracemalloc.start()
    try:
        code, _, err = run_cli(*argv)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    one_line_error(code, err, "10,000,200,001 parameters", "74.5 GiB", "free memory")
    assert peak < 2**27  # refused before allocating anything of that size
    assert list(tmp_path.iterdir()) == []


def test_instance_is_refused_for_a_target_without_instances(tmp_path: Path) -> None:
    code, _, err = run_cli(
        "extract", "random:6-4-1", "--instance", "3", "--out", str(tmp_path / "x")
    )
    one_line_error(code, err, "--instance 3", "not a toy run directory")
    net = tmp_path / "n.safetensors"
    ReLUNet.random("4-3-1").save(net)
    code, _, err = run_cli("extract", str(net), "--instance", "0", "--out", str(tmp_path / "y"))
    one_line_error(code, err, "--instance")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.safetensors"]


# --------------------------------------------------------------------- net
def test_net_new_and_export_never_overwrite_or_create_folders(tmp_path: Path) -> None:
    out = tmp_path / "t.safetensors"
    assert run_cli("net", "new", "4-3-1", "--out", str(out))[0] == 0
    before = out.read_bytes()
    code, _, err = run_cli("net", "new", "4-3-1", "--seed", "2", "--out", str(out))
    one_line_error(code, err, str(out), "--overwrite")
    assert out.read_bytes() == before
    code, _, err = run_cli("net", "new", "4-3-1", "--out", str(tmp_path / "no" / "t.safetensors"))
    one_line_error(code, err, "does not exist", "mkdir -p")
    assert not (tmp_path / "no").exists()
    assert run_cli("net", "new", "4-3-1", "--seed", "2", "--out", str(out), "--overwrite")[0] == 0
    assert out.read_bytes() != before

    onnx_out = tmp_path / "t.onnx"
    onnx_out.write_text("someone's model")
    code, _, err = run_cli("net", "export", str(out), "--onnx", str(onnx_out))
    one_line_error(code, err, "--onnx", "--overwrite")
    assert onnx_out.read_text() == "someone's model"
    code, _, err = run_cli("net", "export", str(out), "--onnx", str(tmp_path / "no" / "t.onnx"))
    one_line_error(code, err, "does not exist")


# ------------------------------------------------------------------ verify
def test_verify_exits_1_when_the_nets_differ_and_0_when_they_agree(tmp_path: Path) -> None:
    truth, other, same = (tmp_path / f"{n}.safetensors" for n in ("t", "o", "s"))
    net = ReLUNet.random("5-9-1", seed=0)
    net.save(truth)
    ReLUNet.random("5-9-1", seed=1).save(other)
    w1, w2 = net.weights
    perm = np.arange(9)[::-1]
    ReLUNet([w1[perm] * 2.0, w2[:, perm] / 2.0], [net.biases[0][perm] * 2.0, net.biases[1]]).save(
        same
    )
    code, out, _ = run_cli("verify", str(other), str(truth), "--samples", "256")
    assert code == 1
    assert "NOT functionally equivalent" in out and "tolerance 2^" in out
    code, out, _ = run_cli("verify", str(same), str(truth), "--samples", "256")
    assert code == 0
    assert "functionally equivalent: no sampled input" in out
    # With --json the verdict goes to stderr, so stdout stays valid JSON; the status holds.
    code, out, err = run_cli("verify", str(other), str(truth), "--samples", "256", "--json")
    assert code == 1 and out.lstrip().startswith("{") and "NOT functionally" in err


# -------------------------------------------------------------------- demo
def test_a_demo_whose_budget_runs_out_exits_1_and_keeps_the_trained_model(
    tmp_path: Path,
) -> None:
    config = tmp_path / "tiny.json"
    write_json(config, config_to_dict(dataclasses.replace(TINY_DEMO, budget=50)))
    out = tmp_path / "run"
    code, stdout, err = run_cli("demo", "--config", str(config), "--out", str(out))
    assert code == 1, err
    assert "Traceback" not in err
    assert "budget" in err and f"kept the trained model and the attack's figures in {out}" in err
    assert {"config.json", "toy", "truth.safetensors", "extraction.json"} <= {
        p.name for p in out.iterdir()
    }
    assert not (out / "report.html").exists() and stdout == ""
    # Rebuilding the report says why there is none, in one line.
    code, _, err = run_cli("report", str(out))
    one_line_error(code, err, "recovered no network", "extraction.json")


def test_demo_with_an_existing_empty_out_uses_it(tmp_path: Path) -> None:
    config = tmp_path / "tiny.json"
    write_json(config, config_to_dict(TINY_DEMO))
    (tmp_path / "new").mkdir()
    code, _, err = run_cli("demo", "--config", str(config), "--out", str(tmp_path / "new"))
    assert code == 0, err
    assert (tmp_path / "new" / "report.html").is_file()


# ------------------------------------------------------------------- train
def test_train_messages_name_the_flags_not_the_fields(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    code, _, err = run_cli("train", "abs", "--neurons", "0", "--out", str(tmp_path / "t"))
    one_line_error(code, err, "--neurons")
    assert "n_hidden" not in err
    code, _, err = run_cli(
        "train", "abs", "--anneal-from", "2", "--anneal-steps", "5", "--out", str(tmp_path / "t")
    )
    one_line_error(code, err, "--anneal-from")
    assert "anneal_from" not in err
    assert list(tmp_path.iterdir()) == []
