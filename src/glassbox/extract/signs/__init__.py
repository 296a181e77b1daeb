"""The sign methods: which side of each recovered hyperplane a neuron is on.

A kink fixes a neuron's row only up to its sign; each module here is one way to find it,
and each gives, per neuron, a sign, its evidence and a margin:

- :mod:`glassbox.extract.signs.last_layer`: the last hidden layer and the output layer
  from one fit; its signs by least squares when the equations have rank;
- :mod:`glassbox.extract.signs.lattice`: the same equations by lattice reduction when the
  layer is wider than they are (a low-density subset sum);
- :mod:`glassbox.extract.signs.wiggle`: any layer, by wiggling the input along one neuron's
  normal at points that isolate it (Carlini et al., 2020; early stopping after Foerster
  et al., 2024);
- :mod:`glassbox.extract.signs.soe`: contractive layers, all neurons at once from a system
  of equations (Canales-Martinez et al., 2024);
- :mod:`glassbox.extract.signs.dispatch`: which method for which layer, and the
  cross-check where more than one applies.

May import the rest of the attack and the oracle package; never verify, toy or anything above.
"""
