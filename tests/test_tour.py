"""The README's tour runs as written: every shell block, in order, in one temporary folder.

The blocks of one section run as one script (a server started in one block still answers
the next, as in a reader's shell). Each runs through ``bash -eo pipefail`` (so every line must exit 0, as the text says),
with only these changes, each for a reason a reader shares:
- port 8000 and the Dask port become free ports (the machine may be running other things);
- ``SCHEDULER`` becomes 127.0.0.1, and the scheduler and worker, which run until stopped,
  go to the background;
- after a line that starts a server in the background, the block waits for its port;
- the line the text says is "killed half way" is killed after a second and a half.
Background jobs are stopped when their section ends. The tour takes many minutes on a
2-core machine (the paper-size demo and sweep, a 784-input net, several grids), so its runs
are marked ``slow``: CI runs them, ``-m "not slow"`` skips them by hand.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


# Sections whose bash needs their python block first: run whole by their own test
# (tests/test_classifier_cli.py::test_the_readme_classifier_section_runs_as_written).
RUN_ELSEWHERE = {"Attacking a classifier"}


def tour_sections() -> list[tuple[str, str]]:
    """(heading, its bash blocks joined) of every tour section that has one, in order."""
    text = README.read_text()
    tour = text[text.index("## A five-minute tour") :]
    sections: dict[str, list[str]] = {}
    heading = ""
    # Fences first, so that a comment line in a code block is never read as a heading.
    for match in re.finditer(r"^```(\w*)\n(.*?)^```|^#+ (.*?)$", tour, re.M | re.S):
        if match.group(3) is not None:
            heading = match.group(3).strip()
        elif match.group(1) == "bash" and heading not in RUN_ELSEWHERE:
            sections.setdefault(heading, []).append(match.group(2))
    return [(h, "\n".join(blocks)) for h, blocks in sections.items()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


WAIT_FOR_PORT = (
    'python -c "import socket, sys, time\n'
    "for _ in range(600):\n"
    "    try:\n"
    "        socket.create_connection(('127.0.0.1', {port}), 0.1).close(); sys.exit(0)\n"
    "    except OSError: time.sleep(0.1)\n"
    'sys.exit(1)"'
)


def adapt(block: str, http_port: int, dask_port: int) -> str:
    """The block as the test runs it (see the module docstring for each change)."""
    block = re.sub(r"\\\n\s*", "", block)  # continued lines joined
    block = block.replace("8000", str(http_port)).replace("8786", str(dask_port))
    block = block.replace("SCHEDULER", "127.0.0.1")
    lines = []
    for line in block.splitlines():
        command = line.split("  #")[0].rstrip()
        if command.startswith("dask "):
            command += " &"
        if "# killed half way" in line:
            command = f"timeout -s KILL 1.5 {command} || [ $? = 137 ]"
        lines.append(command)
        port = re.search(r"--port (\d+)", command)
        if command.endswith("&") and port:
            lines.append(WAIT_FOR_PORT.format(port=port.group(1)))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def tour_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder the whole tour runs in, as a reader's clone would be (with its examples/)."""
    folder = tmp_path_factory.mktemp("tour")
    shutil.copytree(README.parent / "examples", folder / "examples")
    return folder


HTTP_PORT, DASK_PORT = _free_port(), _free_port()


def test_the_tour_has_every_section_it_should() -> None:
    sections = [h for h, _ in tour_sections()]
    assert sections[0] == "The demo and its report" and len(sections) == 5, sections
    for _, text in tour_sections():
        assert "[--" not in text, "an option written in brackets is read as an argument"


@pytest.mark.slow
@pytest.mark.parametrize(("heading", "block"), tour_sections(), ids=lambda x: x[:40])
def test_the_tour_section_runs_as_written(heading: str, block: str, tour_dir: Path) -> None:
    script = "trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT\n" + adapt(
        block, HTTP_PORT, DASK_PORT
    )
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("GLASSBOX_API_KEY", None)
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=tour_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.returncode == 0, (
        f"{heading}\n{script}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )
