"""The README's reconstruction example runs as written and does what its text says."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_block_after(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading) :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no python block after {heading!r}"
    return match.group(1)


def test_reconstruction_example_recovers_the_net(capsys):
    namespace: dict[str, object] = {}
    exec(compile(_python_block_after("### Reconstruction"), "README.md", "exec"), namespace)
    result, check, oracle = namespace["result"], namespace["check"], namespace["oracle"]
    assert result.success  # type: ignore[attr-defined]
    assert check.max_weight_error_log2 <= -35  # type: ignore[attr-defined]
    assert result.queries == oracle.queries == sum(result.queries_by_phase.values())  # type: ignore[attr-defined]
    assert "success" in capsys.readouterr().out
