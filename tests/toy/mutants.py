"""Mutants of the toy code that the suite must catch: ``python tests/toy/mutants.py``.

Each mutant is one textual change to a copy of ``src/``; the script runs the named tests
against the copy and prints whether they failed (caught) or passed (survived). It exits
non-zero if any mutant survives. Run from the repository root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: (name, file under src/glassbox/toy, original text, mutated text, tests to run)
MUTANTS = [
    (
        "density curriculum run backwards",
        "train.py",
        "torch.lerp(log_start, log_target, step / anneal_steps)",
        "torch.lerp(log_target, log_start, step / anneal_steps)",
        "tests/toy/test_toy_train.py::test_density_curriculum_runs_from_anneal_from_to_the_target",
    ),
    (
        "curriculum ending one step short (0.01035 instead of 0.01)",
        "train.py",
        "    if anneal_from is None or step >= anneal_steps:\n        return probability\n",
        "    if anneal_from is None:\n        return probability\n"
        "    step = min(step, anneal_steps - 1)\n",
        "tests/toy/test_toy_train.py::test_density_curriculum_ends_exactly_at_the_target",
    ),
    (
        "evaluation set sampled at density 1 - p",
        "train.py",
        "value.expand(shape), probability, kind.signed_inputs",
        "value.expand(shape), 1.0 - probability, kind.signed_inputs",
        "tests/toy/test_toy_train.py::test_final_loss_is_scored_at_the_instances_own_density",
    ),
    (
        "motif rule without its reciprocal-output condition",
        "analysis.py",
        "if ratio < min_ratio or out_strong <= 0 or out_weak < min_ratio * out_strong:",
        "if ratio < min_ratio or out_strong <= 0:",
        "tests/toy/test_toy_analysis.py::test_motif_needs_reciprocal_output_weights",
    ),
    (
        "W2 normalisation inverted",
        "analysis.py",
        "return w1 / scale[:, None], w2 * scale[None, :], scale",
        "return w1 / scale[:, None], w2 / scale[None, :], scale",
        "tests/toy/test_toy_analysis.py::test_normalisation_is_scale_free_for_both_layers",
    ),
    (
        "pair rule by any positive output weight (not by share)",
        "analysis.py",
        "dedicated.append(bool(mono[top] and col[top] >= PAIR_SHARE))",
        "dedicated.append(bool(mono[top] and np.count_nonzero(col > 0) == 1))",
        "tests/toy/test_toy_analysis.py::test_a_pair_stays_a_pair_when_a_polysemantic_neuron_adds_a_little",
    ),
    (
        "leftovers counted as reads",
        "analysis.py",
        "        reads = np.flatnonzero(large & learned[k])\n",
        "        reads = np.flatnonzero(large)\n",
        "tests/toy/test_toy_analysis.py::test_untrained_leftovers_are_not_counted_as_reads",
    ),
]


def main() -> int:
    """Run every mutant; return 1 if any survives (or the unmutated copy fails)."""
    survived = 0
    control = (
        "control: no mutation (must pass)",
        "train.py",
        "",
        "",
        " ".join(m[4] for m in MUTANTS),
    )
    for name, file, old, new, tests in [control, *MUTANTS]:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "src"
            shutil.copytree(ROOT / "src", src)
            path = src / "glassbox" / "toy" / file
            text = path.read_text()
            if old and text.count(old) != 1:
                print(f"STALE    {name}: the original text is not in {file} exactly once")
                survived += 1
                continue
            path.write_text(text.replace(old, new))
            env = {**os.environ, "PYTHONPATH": str(src)}
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-x",
                    "-p",
                    "no:cacheprovider",
                    *tests.split(),
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            caught = result.returncode != 0
            if not old:
                survived += caught
                print(f"{'FAILED  ' if caught else 'passed  '} {name}")
                continue
            survived += not caught
            print(f"{'caught  ' if caught else 'SURVIVED'} {name}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
