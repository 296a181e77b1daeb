"""The house rules are kept by a tool: `lint-imports` passes on the tree and fails on a broken rule."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))


def lint(src: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the glassbox package found first on PYTHONPATH ``src``."""
    return subprocess.run(
        [LINT, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        env={"PYTHONPATH": str(src), "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def copy_of_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("house") / "src"
    shutil.copytree(ROOT / "src", dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_the_tree_keeps_every_contract() -> None:
    done = lint(ROOT / "src")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("extract/kinks.py", "import glassbox.verify.compare", "extract never imports verify"),
        ("extract/signs/wiggle.py", "import glassbox.toy.data", "extract never imports verify"),
        ("toy/data.py", "import glassbox.oracle.core", "toy never imports extract"),
        ("report/html.py", "import glassbox.cli", "Nothing imports the CLI"),
        ("oracle/core.py", "import glassbox.extract.kinks", "Layers"),
        ("toy/plots.py", "import glassbox.toy.run", "No import circles"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    copy_of_src: Path, module: str, line: str, contract: str
) -> None:
    path = copy_of_src / "glassbox" / module
    original = path.read_text()
    try:
        path.write_text(original + f"\n\ndef _broken() -> None:\n    {line}  # noqa\n")
        done = lint(copy_of_src)
    finally:
        path.write_text(original)
    assert done.returncode != 0
    broken = [ln for ln in done.stdout.splitlines() if ln.endswith("BROKEN")]
    assert broken, done.stdout
    # The contract that names the rule is the one reported broken (titles wrap in the report).
    text = " ".join(done.stdout.split())
    assert re.search(re.escape(contract) + r"(?:(?!KEPT).)*? BROKEN", text), text
