"""Learned skill policies (behaviour cloning, diffusion): features, training samples, models, runtime.

torch is imported by the modules that need it, never here.
"""
