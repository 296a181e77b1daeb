"""Per-panel numbers of an abs(x) sweep run: ``python docs/figures/toy/panels.py RUN_DIR``.

Prints, for each instance, what docs/toy_models.md quotes beside each panel: neuron roles,
which features the monosemantic neurons serve, how polysemantic the others are, the
asymmetric motifs, and leftover (untrained) weights. With ``--graph OUT.png I J ...`` it
also draws the graph view of the computed features of instances I, J, ... into one
compact figure (the run's own ``figures/graph.png`` draws every instance, large).
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
        # m/2 ideal +/- pairs for the top features, the best constant for the rest.
        p = run.config.probability()[i]
        per_feature = run.config.importance_vector() * (p / 3 - p**2 / 4)
        pairs = per_feature[run.config.n_hidden // 2 :].sum() / per_feature.sum()
        print(
            f"1-S={1 - run.sparsity(i):.3g} lr={lr:.2g} loss/const={run.metrics['final_loss'][i] / base[i]:.4f} "
            f"(ideal pairs: {pairs:.4f}) "
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


def draw_graphs(directory: str, out: str, instances: list[int]) -> None:
    """The graph view of the computed features of the given instances, side by side, as PNG."""
    from matplotlib.figure import Figure

    from glassbox.toy import plots

    run = load_run(directory)
    fig = Figure(figsize=(3.6 * len(instances), 6.0), layout="constrained")
    axes = fig.subplots(1, len(instances), squeeze=False)[0]
    for ax, i in zip(axes, instances, strict=True):
        w1, w2, b = run.instance_weights(i)
        shown = plots.computed_features(run, i)
        title = f"1-S={1 - run.sparsity(i):.3g} ({len(shown)} computed features)"
        plots.plot_graph(
            w1, w2, b, ax=ax, importance=run.config.importance_vector(), title=title,
            features=shown,
        )  # fmt: skip
    fig.savefig(out, dpi=80)


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--graph" in args:
        k = args.index("--graph")
        draw_graphs(args[0], args[k + 1], [int(a) for a in args[k + 2 :]])
    else:
        for path in args:
            describe(path)
