"""Per-panel numbers of an abs(x) sweep run: ``python docs/figures/toy/panels.py RUN_DIR``.

Prints, for each instance, what docs/toy_models.md quotes beside each panel: neuron roles,
which features the monosemantic neurons serve, how polysemantic the others are, the
asymmetric motifs, and leftover (untrained) weights.
"""

from __future__ import annotations

import sys

import numpy as np

from glassbox.toy import analysis
from glassbox.toy.run import load_run


def describe(directory: str) -> None:
    """Print one block per instance of the run in ``directory``."""
    run = load_run(directory)
    base = run.baseline_loss()
    for i in range(run.n_instances):
        w1, w2, b = run.instance_weights(i)
        init = run.instance_init(i)
        s = run.summary(i)
        census = analysis.neuron_census(w1, w2, init=init)
        mono = sorted({nr.primary for nr in census if nr.role == "monosemantic"})
        poly = [nr for nr in census if nr.role == "polysemantic"]
        second = [abs(nr.read_weights[1]) for nr in poly]
        motifs = analysis.asymmetric_motifs(w1, w2, init=init)
        lr = run.config.lr_vector()[i]
        print(
            f"1-S={1 - run.sparsity(i):.3g} lr={lr:.2g} loss/const={run.metrics['final_loss'][i] / base[i]:.4f} "
            f"restarts/const=[{', '.join(f'{v / base[i]:.3f}' for v in run.metrics['restart_final_loss'][i])}]"
        )
        print(
            f"  neurons: {s['monosemantic']} mono, {s['polysemantic']} poly, {s['untrained']} untrained, "
            f"{s['dead']} dead; features computed {s['features_computed']} {s['features']}"
        )
        print(
            f"  monosemantic neurons serve features {mono}; top features dedicated: {s['top_features_dedicated']}"
        )
        if poly:
            print(
                f"  polysemantic: {np.mean([len(nr.reads) for nr in poly]):.2f} features each (max "
                f"{max(len(nr.reads) for nr in poly)}); second weight / first: median {np.median(second):.2f}, "
                f"{np.mean(np.array(second) < 0.5):.0%} below 0.5 (one primary weight)"
            )
        print(f"  leftover weights per neuron: {s['leftover_reads_mean']:.2f}")
        if motifs:
            m = motifs[0]
            print(
                f"  asymmetric motifs: {len(motifs)} ({sum(bool(x.inhibitors) for x in motifs)} with inhibitor); "
                f"e.g. neuron {m.neuron}: x{m.strong} at {w1[m.neuron, m.strong] / np.abs(w1[m.neuron]).max():.2f}, "
                f"x{m.weak} at {w1[m.neuron, m.weak] / np.abs(w1[m.neuron]).max():.2f}; writes y{m.strong} "
                f"{w2[m.strong, m.neuron] * np.abs(w1[m.neuron]).max():.2f}, y{m.weak} "
                f"{w2[m.weak, m.neuron] * np.abs(w1[m.neuron]).max():.2f}; inhibitors {list(m.inhibitors)}"
            )


if __name__ == "__main__":
    for path in sys.argv[1:]:
        describe(path)
