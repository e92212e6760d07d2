"""Compose a packaged config the way a Hydra command line will, without running or writing anything.

Checks that must come before Hydra writes into the run directory (resuming a run) use it,
with the same search path `hydra.main` builds: fmrobot's configs, installed plugins'
config folders and `--config-dir`.
"""

from __future__ import annotations

import argparse
import io
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import Any, Iterator, Sequence

from omegaconf import DictConfig


def compose_command_line(config_name: str, arguments: Sequence[str]) -> DictConfig | None:
    """The config (hydra node included) a run of `arguments` will use; None for a command line that runs
    no single job (--help, --cfg, -m, another config) or that does not compose (Hydra reports that itself)."""
    args = parse_command_line(arguments)
    if args is None:
        return None
    if (args.help or args.hydra_help or args.info or args.shell_completion or args.cfg or args.multirun
            or args.config_name is not None or args.config_path is not None):
        return None
    try:
        return compose(config_name, args.overrides, config_dir=args.config_dir)
    except Exception:  # a bad override or config: Hydra reports it in its own words when it runs
        return None


def parse_command_line(arguments: Sequence[str]) -> argparse.Namespace | None:
    """Hydra's reading of a command line (overrides, --cfg, -m, ...); None when argparse refuses it, which
    Hydra reports in its own words when it parses the same line."""
    from hydra._internal.utils import get_args_parser

    try:
        with redirect_stderr(io.StringIO()):
            return get_args_parser().parse_args(list(arguments))
    except SystemExit:  # argparse's error exit
        return None


def compose(config_name: str, overrides: Sequence[str], config_dir: str | None = None) -> DictConfig:
    """`configs/<config_name>.yaml` with `overrides`, as a run would see it (hydra node included)."""
    from hydra.types import RunMode

    with _hydra(config_name, config_dir) as app:
        return app.compose_config(config_name, list(overrides), run_mode=RunMode.RUN, with_log_configuration=False)


def compose_plain(config_name: str, overrides: Sequence[str] = (), config_dir: str | None = None) -> dict[str, Any]:
    """`compose` as the components see it: plain, resolved values, without the hydra node."""
    from omegaconf import OmegaConf

    config = compose(config_name, overrides, config_dir=config_dir)
    plain = OmegaConf.to_container(OmegaConf.masked_copy(config, [k for k in config if k != "hydra"]), resolve=True)
    assert isinstance(plain, dict)
    return plain


def config_groups(config_name: str) -> dict[str, str]:
    """group -> default option, for the groups `configs/<config_name>.yaml` chooses from (`task`, `planner`,
    ...), in the order of its defaults list; Hydra's own groups and folders it does not use left out."""
    from hydra.types import RunMode

    with _hydra(config_name, None) as app:
        defaults = app.config_loader.compute_defaults_list(config_name, [], RunMode.RUN).defaults
    chosen = {}
    for default in defaults:
        group, _, option = (default.config_path or "").rpartition("/")
        if group and not group.startswith("hydra"):
            chosen[group] = option
    return chosen


def group_options(config_name: str, group: str) -> list[str]:
    """The options (yaml files) of `group` on the search path, plugins' config folders included."""
    with _hydra(config_name, None) as app:
        return sorted(app.config_loader.get_group_options(group))


@contextmanager
def _hydra(config_name: str, config_dir: str | None) -> Iterator[Any]:
    """A Hydra instance with the search path `hydra.main` builds for fmrobot's commands."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.plugins import Plugins

    from fmrobot.cli import PluginConfigSearchPath

    Plugins.instance().register(PluginConfigSearchPath)
    search_path = create_automatic_config_search_path(None, None, "pkg://fmrobot.configs")
    if config_dir is not None:
        search_path.prepend(provider="command-line", path=f"file://{Path(config_dir).resolve()}",
                            anchor=SearchPathQuery(provider="schema"))
    GlobalHydra.instance().clear()
    try:
        yield Hydra.create_main_hydra2(task_name=f"fmrobot.{config_name}", config_search_path=search_path)
    finally:
        GlobalHydra.instance().clear()
