"""`--help` for fmrobot's commands: the groups with their options, the settings, and the README's tour.

Hydra's own help dumps the whole composed config (about 170 lines) and lists every folder
of the search path as a group, benchmark suites included. This one is short and lists
what a user chooses from; `--cfg job` still prints the composed config.
"""

from __future__ import annotations

import textwrap

from omegaconf import OmegaConf

#: The README's tour, word for word (tests/test_readme.py keeps the two the same).
TOUR = """\
python -m fmrobot.run task=pick_place episodes=50            # seeds 0..49, progress bar, summary line
python -m fmrobot.run planner=oracle safety=none seed=7        # swap components by name
python -m fmrobot.run policy.speed=0.6 env.control_hz=40       # change any option
python -m fmrobot.run video=all executor.workers=2             # a video per episode, two worker processes
python -m fmrobot.run hydra.run.dir=/tmp/my_run                # choose the run directory
"""

WIDTH = 100
WHAT = {
    "run": "run episodes and report their success",
    "collect": "record demonstrations into a dataset",
    "train": "train a learned policy from demonstrations",
}


def help_text(config_name: str) -> str:
    from fmrobot.compose import compose, config_groups, group_options

    cfg = compose(config_name, [])
    config = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=False)
    assert isinstance(config, dict)
    groups = config_groups(config_name)
    lines = [f"python -m fmrobot.{config_name} [group=option ...] [key=value ...]: {WHAT.get(config_name, '')}",
             "", "Groups (group=option; * the default; group.key=value changes one of its options):"]
    for group, default in sorted(groups.items()):
        options = [f"{o}*" if o == default else o for o in group_options(config_name, group)]
        lines += textwrap.wrap(", ".join(options), WIDTH, initial_indent=f"  {group:<11}",
                               subsequent_indent=" " * 13)
    settings = [k for k, v in config.items() if k not in groups and not isinstance(v, dict)]
    nested = [f"{k}.*" for k, v in config.items() if k not in groups and isinstance(v, dict)]
    lines += ["", "Settings (key=value):"]
    lines += textwrap.wrap(", ".join([*settings, *nested]), WIDTH, initial_indent="  ", subsequent_indent="  ")
    if config_name == "run":
        lines += ["", "A tour:", *(f"  {line}" for line in TOUR.splitlines())]
    lines += ["", "--cfg job prints the composed config; --hydra-help shows Hydra's options. More in README.md."]
    return "\n".join(lines)
