"""Toy models of superposition (Elhage et al., 2022), batched over instances.

config (ToyConfig), data, models, seeds (random streams), train, trained (TrainedRun),
run (run folders), analysis, plots, target (an instance as an attack target).
May import only the ground floor (mlp, io, config, errors, extras); never the attack,
the oracle package, verify or anything above.
"""
