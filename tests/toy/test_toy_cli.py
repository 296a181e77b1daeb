"""``glassbox train`` and ``glassbox plot``: complete run directories, clean failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glassbox.cli import main

FAST = ["--steps", "60", "--batch", "64", "--no-progress"]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_abs_writes_a_complete_run_dir_and_plot_draws_it(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    args = ["train", "abs", "--features", "6", "--neurons", "4", "--sparsity", "0,0.9"]
    code, stdout, err = run_cli(
        [*args, "--seed", "3", "--out", str(out), "--no-plots", *FAST], capsys
    )
    assert code == 0, err
    names = {p.name for p in out.iterdir()}
    assert names == {"weights.safetensors", "config.json", "metrics.json", "analysis.json"}
    config = json.loads((out / "config.json").read_text())
    assert (config["model"], config["n_features"], config["sparsity"], config["seed"]) == (
        "abs",
        6,
        [0.0, 0.9],
        3,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["final_loss"]) == 2 and len(metrics["loss_curve"]["loss"]) == 60
    analysis = json.loads((out / "analysis.json").read_text())
    assert [row["sparsity"] for row in analysis["instances"]] == pytest.approx([0.0, 0.9])
    assert "mono" in stdout and len(stdout.strip().splitlines()) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary leftovers

    code, stdout, err = run_cli(["plot", str(out)], capsys)
    assert code == 0, err
    figures = {p.name for p in (out / "figures").iterdir()}
    for stem in ("loss", "sweep", "neuron_stack", "weights", "graph"):
        assert {f"{stem}.png", f"{stem}.svg"} <= figures
    assert "wrote 10 figure files" in stdout


def test_train_relu_output_draws_the_feature_figures(tmp_path: Path, capsys) -> None:
    code, stdout, err = run_cli(
        ["train", "relu-output", "--out", str(tmp_path / "r"), *FAST], capsys
    )
    assert code == 0, err
    for stem in ("features", "geometry", "sweep", "loss"):
        assert (tmp_path / "r" / "figures" / f"{stem}.svg").is_file()
    assert "D*" in stdout


@pytest.mark.parametrize("model", ["linear", "relu-hidden"])
def test_train_other_kinds(tmp_path: Path, capsys, model: str) -> None:
    args = ["train", model, "--out", str(tmp_path / "r"), "--no-plots", *FAST]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert not (tmp_path / "r" / "figures").exists()
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["model"] == model


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "abs", "--sparsity", "0,1"], "outside [0, 1)"),
        (["train", "abs", "--sparsity", "-0.2"], "outside [0, 1)"),
        (["train", "abs", "--sparsity", "dense"], "--sparsity"),
        (["train", "abs", "--features", "5", "--neurons", "11"], "more than allowed"),
        (["train", "relu-output", "--features", "5", "--neurons", "6"], "more than allowed"),
        (["train", "abs", "--schedule", "cosine", "--warmup", "100"], "warmup"),
        (["train", "abs", "--device", "tpu"], "unknown device"),
        (["train", "abs", "--anneal-from", "1.5", "--anneal-steps", "10"], "--anneal-from"),
        (["train", "quadratic"], "No such command"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, capsys, args, message
) -> None:
    code, _, err = run_cli([*args, "--out", str(tmp_path / "run"), *FAST], capsys)
    assert code == 2
    assert message in err
    assert list(tmp_path.iterdir()) == []


def test_existing_out_dir_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("x")
    code, _, err = run_cli(["train", "abs", "--out", str(tmp_path / "run"), *FAST], capsys)
    assert code == 2 and "already exists" in err
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["notes.txt"]


def test_plot_rejects_non_runs_and_corrupt_weights(tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(["plot", str(tmp_path)], capsys)
    assert code == 2 and "not a glassbox toy run" in err and len(err.strip().splitlines()) == 1
    run = tmp_path / "run"
    assert run_cli(["train", "linear", "--out", str(run), "--no-plots", *FAST], capsys)[0] == 0
    (run / "weights.safetensors").write_bytes(b"\x00garbage")
    code, _, err = run_cli(["plot", str(run)], capsys)
    assert code == 2 and "safetensors" in err and len(err.strip().splitlines()) == 1
    assert not (run / "figures").exists()
