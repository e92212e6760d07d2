"""The simulated world: PyBullet tabletop scenes, robots, cameras, tasks and envs.

Depends on `fmrobot.types` only. Importing `sims` is cheap; PyBullet loads with the
modules that need it (`sims.env`, `sims.world`, ...).
"""
