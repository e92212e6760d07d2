"""Datasets rendered from the simulated world (for training learned components)."""
