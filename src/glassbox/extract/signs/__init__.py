"""The sign methods: which side of each recovered hyperplane a neuron is on.

A kink fixes a neuron's row only up to its sign; each module here is one way to find it:

- :mod:`glassbox.extract.signs.last_layer`: the last hidden layer, by a linear solve of the
  output layer over regions;
- :mod:`glassbox.extract.signs.wiggle`: any layer, by wiggling the input along one neuron's
  normal and reading which side moves the output (Carlini et al., 2020).

May import the rest of the attack and the oracle package; never verify, toy or anything above.
"""
