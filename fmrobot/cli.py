"""What the Hydra command lines (`python -m fmrobot.run`, `.collect`, `.train`) have in common.

Each composes a packaged config, adds installed plugins' config folders to the search
path, and turns a user mistake (an `FmrobotError`) into one line on stderr and exit
status 2 instead of a traceback.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import DictConfig, OmegaConf

from fmrobot import registry
from fmrobot.errors import FmrobotError


class PluginConfigSearchPath(SearchPathPlugin):
    """Adds the config folders of installed plugins (entry-point group fmrobot.configs)."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for path in registry.config_search_path():
            search_path.append(provider="fmrobot-plugin", path=path)


def plain(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as plain dicts and lists, interpolations resolved."""
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    return config


def hydra_command(config_name: str, job: Callable[[DictConfig], Any]) -> Callable[[], None]:
    """A console entry point that composes `configs/<config_name>.yaml` and runs `job` on it."""
    import hydra
    from hydra.core.plugins import Plugins

    def task(cfg: DictConfig) -> None:
        try:
            job(cfg)
        except FmrobotError as error:
            print(f"fmrobot: error: {error}", file=sys.stderr, flush=True)
            sys.exit(2)

    # Hydra names the job (hydra.job.name, and its log file) after the task function's module.
    task.__module__ = f"fmrobot.{config_name}"
    composed = hydra.main(version_base="1.3", config_path="pkg://fmrobot.configs", config_name=config_name)(task)

    def main() -> None:
        Plugins.instance().register(PluginConfigSearchPath)
        composed()

    return main
