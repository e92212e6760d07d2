"""Demonstrations: recording episodes, the on-disk dataset, replaying what was recorded."""
