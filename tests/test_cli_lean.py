"""The extraction half runs without torch, the CLI registers without torch or matplotlib, and
progress bars go only to a terminal (or where asked for)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def glassbox(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return python(f"import sys; from glassbox.cli import main; sys.exit(main({list(argv)!r}))", cwd)


def test_importing_the_cli_and_the_extraction_half_loads_neither_torch_nor_matplotlib(
    tmp_path: Path,
) -> None:
    probe = python(
        "import sys, json\n"
        "import glassbox.cli, glassbox.mlp, glassbox.extract, glassbox.oracle.targets\n"
        "glassbox.cli._register()\n"
        "print(json.dumps(sorted(m for m in ('torch', 'matplotlib', 'onnx', 'onnxruntime') "
        "if m in sys.modules)))",
        tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == []


def test_help_for_every_command_loads_no_torch(tmp_path: Path) -> None:
    probe = python(
        "import sys, contextlib, io\n"
        "sys.modules['torch'] = None  # any import of torch now fails\n"
        "from glassbox.cli import main\n"
        "for argv in ([], ['demo'], ['extract'], ['verify'], ['net', 'new'], ['train'], ['plot']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main([*argv, '--help']) == 0, argv\n"
        "print('matplotlib' in sys.modules)",
        tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "False"


def test_extract_verify_and_net_run_without_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch now fails\n"
        "from glassbox.cli import main\n"
        "assert main(['net', 'new', '6-5-1', '--out', 't.safetensors']) == 0\n"
        "assert main(['net', 'info', 't.safetensors']) == 0\n"
        "assert main(['extract', 't.safetensors', '--out', 'x', '--report']) == 0\n"
        "assert main(['report', 'x']) == 0\n"
        "assert main(['verify', 'x/recovered.safetensors', 't.safetensors', '--samples', '64']) == 0\n"
        "print('torch' in sys.modules and sys.modules['torch'] is not None)"
    )
    probe = python(code, tmp_path)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().splitlines()[-1] == "False"
    assert (tmp_path / "x" / "line.png").is_file()
    assert (tmp_path / "x" / "report.html").is_file()


def test_the_toy_half_without_torch_is_one_line_naming_the_extra(
    tmp_path: Path, tmp_path_factory
) -> None:
    demo_like = tmp_path_factory.mktemp("demo-like")  # what `report` reads a demo run by
    (demo_like / "extraction.json").write_text("{}")
    (demo_like / "toy").mkdir()
    report = ["report", str(demo_like)]
    for argv in (["demo", "--out", "d"], ["train", "abs", "--out", "t"], report):
        probe = python(
            "import sys\nsys.modules['torch'] = None\nfrom glassbox.cli import main\n"
            f"sys.exit(main({argv!r}))",
            tmp_path,
        )
        assert probe.returncode == 2, probe.stderr
        assert probe.stderr.count("\n") == 1 and "Traceback" not in probe.stderr
        assert "needs torch" in probe.stderr and "glassbox[toy]" in probe.stderr
    assert list(tmp_path.iterdir()) == []


def test_progress_bars_only_on_request_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    plain = glassbox("extract", "random:8-6-2", "--out", "a", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "extract: self-check" not in plain.stderr and "\r" not in plain.stderr
    asked = glassbox("extract", "random:8-6-2", "--out", "b", "--progress", cwd=tmp_path)
    assert asked.returncode == 0, asked.stderr
    assert "extract: self-check" in asked.stderr


def test_the_training_bar_shows_the_lowest_loss_as_the_report_names_it(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("torch")
    argv = ("train", "abs", "--features", "4", "--neurons", "3", "--steps", "3", "--restarts")
    run = glassbox(*argv, "2", "--no-plots", "--progress", "--out", "t", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "lowest_loss=" in run.stderr and " loss=" not in run.stderr


def test_usage_errors_of_the_toy_half_answer_before_torch_is_imported(tmp_path: Path) -> None:
    # Each is a one-line error, exit 2, with torch never imported (it alone takes seconds).
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    cases = [
        (["demo", "--paper-size", "--config", "c.json"], "not both"),
        (["demo", "--config", "missing.json"], "no such file"),
        (["demo", "--out", "full"], "full"),
        (["train", "abs", "--sparsity", "2", "--out", "t"], "sparsity 2.0 is outside"),
        (["train", "abs", "--features", "x", "--out", "t"], "'--features'"),
        (["train", "abs", "--out", "full"], "full"),
        (["report", "nope"], "no such run directory"),
        (["report", "full"], "not a glassbox demo run"),
        (["plot", "nope"], "no such run directory"),
        (["plot", "full"], "not a glassbox toy run"),
    ]
    code = (
        "import sys, contextlib, io\n"
        "from glassbox.cli import main\n"
        f"for argv, words in {cases!r}:\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        status = main(argv)\n"
        "    lines = err.getvalue().splitlines()\n"
        "    assert status == 2 and len(lines) == 1 and words in lines[0], (argv, status, lines)\n"
        "    assert 'torch' not in sys.modules, argv\n"
        "print('ok')"
    )
    probe = python(code, tmp_path)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "ok"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
