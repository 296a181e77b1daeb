"""``glassbox demo`` end to end with a reduced config, and ``glassbox report``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import TINY_DEMO as TINY
from conftest import run_cli
from glassbox.config import config_to_dict, load_config
from glassbox.demo.run import DemoConfig, default_out_dir, paper_config
from glassbox.io import read_json, write_json
from glassbox.mlp import ReLUNet

RUN_FILES = {
    "config.json",
    "toy",
    "truth.safetensors",
    "recovered.safetensors",
    "extraction.json",
    "verification.json",
    "line.json",
    "report.html",
}


def test_demo_writes_a_complete_run_and_prints_its_summary(
    demo_run: tuple[Path, int, str, str],
) -> None:
    out, code, stdout, stderr = demo_run
    assert code == 0, stderr
    assert {p.name for p in out.iterdir()} == RUN_FILES
    assert {"weights.safetensors", "config.json", "metrics.json"} <= {
        p.name for p in (out / "toy").iterdir()
    }
    assert load_config(DemoConfig, out / "config.json") == TINY
    lines = stdout.strip().splitlines()
    assert lines[0] == f"report: {out / 'report.html'}"
    assert len(lines) == 6  # the path, then five summary lines
    for stage in ("[1/4] training", "[2/4] attacking", "[3/4] verifying", "[4/4] writing"):
        assert stage in stderr
    # stderr is not a terminal here, so no progress bar is drawn into it.
    assert f"train abs x{TINY.toy.restarts}" not in stderr and "extract: check" not in stderr


def test_summary_numbers_agree_with_the_saved_figures(demo_run: tuple[Path, int, str, str]) -> None:
    out, _, stdout, _ = demo_run
    ex, ver = read_json(out / "extraction.json"), read_json(out / "verification.json")
    assert ex["success"] is True
    assert ex["queries"] == sum(ex["queries_by_phase"].values()) == ver["queries"]
    assert f"queries:                {ex['queries']:,} " in stdout
    assert f"seconds:                {ex['seconds']:.1f} " in stdout
    assert f"max weight error:       2^{ver['max_weight_error_log2']:.1f}" in stdout
    assert f"max |f - f_hat| = 2^{ver['epsilon_log2']:.1f}" in stdout
    assert ver["max_weight_error_log2"] < -30
    match = re.search(r"neurons recovered:\s+(\d+) / (\d+) visible", stdout)
    assert match is not None
    recovered, visible = map(int, match.groups())
    hidden = ReLUNet.load(out / "truth.safetensors").dims[1]
    assert visible == hidden - len(ver["dead"]) - len(ver["invisible"])
    assert recovered == visible - len(ver["unmatched_truth"])


def test_the_attacked_net_is_the_kept_toy_instance(demo_run: tuple[Path, int, str, str]) -> None:
    from glassbox.toy.run import load_run

    out = demo_run[0]
    truth = ReLUNet.load(out / "truth.safetensors")
    toy = load_run(out / "toy").instance_net(0)
    assert all((a == b).all() for a, b in zip(truth.weights, toy.weights, strict=True))


def test_report_rebuilds_from_the_saved_run(demo_run: tuple[Path, int, str, str]) -> None:
    out = demo_run[0]
    before = (out / "report.html").read_text()
    (out / "report.html").unlink()
    code, stdout, _ = run_cli("report", str(out))
    assert code == 0
    assert stdout.strip() == f"report: {out / 'report.html'}"
    assert (out / "report.html").read_text() == before


def test_the_setup_names_a_density_curriculum_only_when_one_was_used(
    demo_run: tuple[Path, int, str, str], tmp_path: Path
) -> None:
    import shutil

    assert "starting at 1 - S" not in (demo_run[0] / "report.html").read_text()
    copy = tmp_path / "run"
    shutil.copytree(demo_run[0], copy)
    toy_config = read_json(copy / "toy" / "config.json")
    toy_config |= {"anneal_from": 0.5, "anneal_steps": 100}
    write_json(copy / "toy" / "config.json", toy_config)
    assert run_cli("report", str(copy))[0] == 0
    text = (copy / "report.html").read_text()
    assert (
        "starting at 1 - S = 0.5 and moving to the target sparsity over the first 100 steps" in text
    )


def test_report_of_a_bad_directory_is_a_one_line_error(tmp_path: Path) -> None:
    code, _, stderr = run_cli("report", str(tmp_path / "nope"))
    assert code == 2
    assert stderr.count("\n") == 1 and "no such run directory" in stderr
    code, _, stderr = run_cli("report", str(tmp_path))
    assert code == 2
    assert stderr.count("\n") == 1 and "not a glassbox demo run" in stderr


def test_demo_refuses_an_existing_non_empty_out(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    code, _, stderr = run_cli("demo", "--out", str(tmp_path), "--no-progress")
    assert code == 2
    assert stderr.count("\n") == 1 and "--overwrite" in stderr
    # --overwrite still refuses a folder that is not a demo run.
    code, _, stderr = run_cli("demo", "--out", str(tmp_path), "--overwrite", "--no-progress")
    assert code == 2 and "glassbox did not write it" in stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_default_out_dir_is_fresh_and_timestamped(tmp_path: Path) -> None:
    first = default_out_dir(tmp_path)
    assert re.fullmatch(r"demo-\d{8}-\d{6}", first.name)
    assert first.is_dir()  # reserved at once, so no other run can take it
    second = default_out_dir(tmp_path)
    assert second != first and second.is_dir()


def test_runs_started_in_the_same_second_get_different_folders(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        folders = list(pool.map(lambda _: default_out_dir(tmp_path), range(8)))
    assert len(set(folders)) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f.name for f in folders)


def test_configs_round_trip_and_bad_ones_are_refused(tmp_path: Path) -> None:
    for config in (DemoConfig(), paper_config(), TINY):
        write_json(tmp_path / "c.json", config_to_dict(config))
        assert load_config(DemoConfig, tmp_path / "c.json") == config
    assert paper_config().toy.n_features == 100 and paper_config().toy.n_hidden == 40
    bad = config_to_dict(TINY) | {"instance": 3}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    code, _, stderr = run_cli(
        "demo", "--config", str(tmp_path / "bad.json"), "--out", str(tmp_path / "x")
    )
    assert code == 2 and "instance 3 does not exist" in stderr
    assert not (tmp_path / "x").exists()


def test_the_report_shows_the_attacks_line_with_its_kinks(
    demo_run: tuple[Path, int, str, str],
) -> None:
    out = demo_run[0]
    line = read_json(out / "line.json")
    hidden = line["kind"].count("hidden")
    page = (out / "report.html").read_text()
    assert (
        f"{len(line['samples_t']):,} queries on this line placed {len(line['t'])} kinks: {hidden} where"
        in page
    )
    assert 'alt="f along a line with its kinks"' in page


def test_every_file_of_a_run_is_an_ordinary_file(demo_run: tuple[Path, int, str, str]) -> None:
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    out = demo_run[0]
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*")}
    assert "toy/weights.safetensors" in modes
    for name, mode in modes.items():
        want = (0o777 if (out / name).is_dir() else 0o666) & ~mask
        assert mode == want, f"{name}: {oct(mode)}"
