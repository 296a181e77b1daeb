"""Toy models of superposition (Elhage et al., 2022), batched over instances."""
