"""Perception: camera frames in, typed scene descriptions out."""
