"""What the Hydra command lines (`python -m fmrobot.run`, `.collect`, `.train`) have in common.

Each composes a packaged config, adds installed plugins' config folders to the search
path, and turns a user mistake into one line on stderr and exit status 2 instead of a
traceback: an `FmrobotError`, and Hydra's and OmegaConf's own errors about the command
line or the config (an unknown key, a missing group option, an override that does not
parse, an interpolation that does not resolve). Errors that are fmrobot's own bugs keep
their traceback. Before Hydra writes anything, the command line is checked for secrets
and, with untrusted configs, the composed config for code it would run, secrets, where
an API key would go and where the run would write (fmrobot/security.py). A run refused
at the job's own check leaves no copy of its config in `.hydra/`, and what `--cfg`,
`--info` and `--help` print has its secrets blanked out.
"""

from __future__ import annotations

import io
import os
import re
import sys
import traceback
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, Callable, Sequence

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import DictConfig, OmegaConf

from fmrobot import registry, security
from fmrobot.errors import ConfigError, FmrobotError, one_line, shown

#: Hydra re-raises instead of printing its own report when this is set.
FULL_ERROR_ENV = "HYDRA_FULL_ERROR"


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


def hydra_error_line(error: BaseException) -> str:
    """Hydra's and OmegaConf's several-line reports as one line: listings joined, search path left out,
    the cause ("Key 'x' is not in struct") right after what failed ("Could not override 'x'")."""
    parts = _report_parts(str(error))
    cause = error.__cause__
    if cause is not None and str(cause) not in str(error):
        cause_parts = _report_parts(str(cause))
        if parts and cause_parts:
            parts[:1] = [f"{parts[0]}: {cause_parts[0]}", *cause_parts[1:]]
        else:
            parts += cause_parts
    return one_line("; ".join(parts))


def _report_parts(text: str) -> list[str]:
    parts: list[tuple[str, list[str] | None]] = []
    listing: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("Config search path"):
            break
        if line.startswith(("full_key:", "object_type=", "reference_type=")) or not line.strip("^ "):
            continue  # OmegaConf's key details (said already) and the parser's caret under the override
        if listing is not None and raw[:1].isspace():
            listing.append(line)
            continue
        listing = [] if line.endswith(":") else None
        parts.append((line.rstrip(":."), listing))
    return [f"{head}: {', '.join(items)}" if items is not None else head for head, items in parts]


def config_error_line(error: Exception) -> str:
    """One line for an error raised while Hydra composes the config, before any fmrobot job runs: what
    fails there is the command line or a config file (Hydra also raises plain ValueErrors and OSErrors
    for some, such as `task=null` or a config name too long for a file)."""
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(error, MissingConfigException) and error.missing_cfg_file and error.options is not None:
        # Built from the parts, not the text: a name with a line break must not split the message.
        group = error.missing_cfg_file.rpartition("/")[0]
        return (f"Could not find {shown(error.missing_cfg_file, 200)}; available options in {group!r}: "
                f"{', '.join(error.options) or 'none'}")
    if isinstance(error, OverrideParseException):
        return f"invalid override {shown(error.override, 200)}: {hydra_error_line(error)}"
    if isinstance(error, (HydraException, OmegaConfBaseException)):
        return hydra_error_line(error)
    if isinstance(error, OSError) and error.filename is not None:
        return f"cannot read config {shown(str(error.filename), 200)}: {error.strerror}"
    return one_line(f"{type(error).__name__} while composing the config: {error}")


#: errno -> what it means for a folder Hydra creates
_CANNOT_CREATE = {"ENOTDIR": "a part of the path is a file, not a folder", "EACCES": "permission denied",
                  "EROFS": "read-only file system", "EEXIST": "a file of that name exists"}


def output_error_line(error: BaseException) -> str | None:
    """One line for an OSError Hydra raised while making the run's outputs (the run directory, the config
    copies in it, its log file), which config_error_line would take for a config it cannot read; None
    for any other error."""
    import errno

    if not isinstance(error, OSError):
        return None
    frames = [frame.name for frame in traceback.extract_tb(error.__traceback__)]
    if "run_job" not in frames:  # hydra.core.utils.run_job makes the outputs; composing comes before it
        return None
    if "_save_config" in frames:
        what = "cannot write Hydra's config copies into the run directory (hydra.output_subdir)"
    elif "configure_log" in frames:
        what = "cannot open the run's log file (hydra.job_logging)"
    else:
        what = "cannot create the run directory (hydra.run.dir)"
    why = _CANNOT_CREATE.get(errno.errorcode.get(error.errno or 0, ""), error.strerror or type(error).__name__)
    where = f" {shown(str(error.filename), 200)}" if error.filename is not None else ""
    return f"{what}{where}: {why}; expected a folder that can be created and written"


def hinted_error_line(error: Exception, config_name: str, arguments: Sequence[str]) -> str | None:
    """For an unknown key or group option on the command line: a line with the closest names
    (fmrobot/hints.py) instead of Hydra's `+key=` advice; None for other errors."""
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    from fmrobot import hints
    from fmrobot.compose import parse_command_line

    args = parse_command_line(arguments)
    if not isinstance(error, (HydraException, OmegaConfBaseException)) or args is None:
        return None
    overrides = args.overrides
    text = hydra_error_line(error)
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        text = f"Could not find '{error.missing_cfg_file}'"
    return hints.hint_for(text, config_name, overrides)


def fail(message: str) -> None:
    print(f"fmrobot: error: {one_line(message)}", file=sys.stderr, flush=True)
    sys.exit(2)


def _hydra_output_files() -> list[Path]:
    """The config copies Hydra wrote to `<run dir>/.hydra/` for this job."""
    from hydra.core.hydra_config import HydraConfig

    try:
        hydra = HydraConfig.get()
    except ValueError:  # no Hydra job (tests call jobs directly)
        return []
    if hydra.output_subdir is None:
        return []
    folder = Path(hydra.runtime.output_dir) / str(hydra.output_subdir)
    return [folder / name for name in ("config.yaml", "hydra.yaml", "overrides.yaml")]


def _hydra_node() -> dict[str, Any]:
    """This job's hydra node as Hydra copies it to hydra.yaml (unresolved); empty outside a Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    try:
        node = OmegaConf.to_container(HydraConfig.get(), resolve=False)
    except ValueError:
        return {}
    return node if isinstance(node, dict) else {}


def check_job_config(cfg: DictConfig) -> None:
    """The job's own check, in any mode: no secret in the config (hydra node included) and no API key
    for an untrusted host. A refused run's config copies in .hydra/ are deleted."""
    written = _hydra_output_files()
    try:
        config = plain(cfg)
        security.check_config({**config, "hydra": _hydra_node()})
        security.check_key_destinations(config)
    except FmrobotError:
        security.discard(written)
        raise


def _untrusted_view(cfg: DictConfig) -> tuple[dict[str, Any], list[tuple[str, str]], str]:
    """What the untrusted checks read, resolved as the run will resolve it: the fmrobot config (no hydra
    node), the paths Hydra will write (run and sweep folders, config copies, log files), and the folder
    fmrobot's relative paths start from."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    HydraConfig.instance().set_config(cfg)
    try:
        run_dir = os.path.abspath(str(cfg.hydra.run.dir))
        with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
            cfg.hydra.runtime.output_dir = run_dir  # as hydra.core.utils.run_job sets it
        HydraConfig.instance().set_config(cfg)
        # hydra.job.chdir moves the job into the run directory before its log file opens and fmrobot runs.
        job_cwd = run_dir if cfg.hydra.job.chdir else os.getcwd()
        paths = [("hydra.run.dir", run_dir), ("hydra.sweep.dir", os.path.abspath(str(cfg.hydra.sweep.dir)))]
        if cfg.hydra.output_subdir is not None:
            paths.append(("hydra.output_subdir", os.path.join(run_dir, str(cfg.hydra.output_subdir))))
        for section, cwd in (("job_logging", job_cwd), ("hydra_logging", os.getcwd())):
            handlers = OmegaConf.select(cfg, f"hydra.{section}.handlers") or {}
            for name in handlers:
                filename = OmegaConf.select(cfg, f"hydra.{section}.handlers.{name}.filename")
                if filename is not None:
                    paths.append((f"hydra.{section}.handlers.{name}.filename", os.path.join(cwd, str(filename))))
        task = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    finally:
        HydraConfig.instance().cfg = None
    assert isinstance(task, dict)
    return task, paths, job_cwd


def check_untrusted_command(config_name: str, arguments: Sequence[str]) -> None:
    """With untrusted configs, compose the command line's config (hydra node included) exactly as the
    run will, and check it before Hydra imports, calls or writes anything it names."""
    from fmrobot.compose import compose, parse_command_line

    args = parse_command_line(arguments)
    if args is None or args.help or args.hydra_help or args.info or args.shell_completion:
        return
    refused = {"multirun (-m)": args.multirun, "--config-name (-cn)": args.config_name is not None,
               "--config-path (-cp)": args.config_path is not None}
    for option, given in refused.items():
        if given:
            # A sweep is many configs; another primary config could move Hydra's search path.
            raise ConfigError(f"{option} cannot be used with {registry.UNTRUSTED_ENV} set: each run's config is "
                              f"checked before Hydra uses it, from fmrobot's own {config_name}.yaml (add config "
                              "folders with --config-dir, run sweep jobs one by one)")
    _check_search_path_overrides(args.overrides)
    try:
        # Composed on the search path the run itself builds (--config-dir included): the config checked
        # is the config run.
        cfg = compose(config_name, args.overrides, config_dir=args.config_dir)
        config = OmegaConf.to_container(cfg, resolve=False)
        task, hydra_paths, job_cwd = _untrusted_view(cfg)
    except Exception as error:  # Hydra's and OmegaConf's errors, and the plain ones Hydra raises for some
        # Fail closed: a config that cannot be checked is not run.
        raise ConfigError(f"with {registry.UNTRUSTED_ENV} set, the config is checked before it is used "
                          f"and this command line could not be composed: {config_error_line(error)}") from None
    assert isinstance(config, dict)
    security.check_untrusted_hydra(config)
    security.check_config({**task, "hydra": config.get("hydra") or {}})
    security.check_key_destinations(task)
    security.check_untrusted_outputs(task, hydra_paths, cwd=job_cwd)
    security.check_untrusted_executor(task)


def _prints_config(arguments: Sequence[str]) -> bool:
    """Whether Hydra will print the config (or its help, which shows it) instead of running a job."""
    from fmrobot.compose import parse_command_line

    args = parse_command_line(arguments)
    return args is not None and bool(args.cfg or args.info or args.help or args.hydra_help)


def _check_search_path_overrides(overrides: Sequence[str]) -> None:
    """A `pkg://` entry in hydra.searchpath imports that package while the config is composed (before
    any check could see it): only packages on the allow-list."""
    allowed = registry.trusted_modules()
    for override in overrides:
        if override.lstrip("+~").startswith("hydra.searchpath"):
            for package in re.findall(r"pkg://([\w.]+)", override):
                if not any(package == p or package.startswith(p + ".") for p in allowed):
                    raise ConfigError(f"hydra.searchpath names pkg://{package}, outside the allow-list for untrusted "
                                      f"configs ({registry.UNTRUSTED_ENV} is set): {', '.join(allowed)}")


def hydra_command(config_name: str, job: Callable[[DictConfig], Any],
                  prepare: Callable[[list[str]], list[str]] | None = None) -> Callable[[], None]:
    """A console entry point that composes `configs/<config_name>.yaml` and runs `job` on it; `prepare`
    checks (and may extend) the command line before Hydra composes it and writes into the run directory."""
    import hydra
    from hydra.core.plugins import Plugins
    from omegaconf.errors import OmegaConfBaseException

    started = False

    def task(cfg: DictConfig) -> None:
        nonlocal started
        started = True
        try:
            check_job_config(cfg)
            job(cfg)
        except FmrobotError as error:
            fail(str(error))
        except OmegaConfBaseException as error:  # an interpolation that does not resolve, a missing value
            fail(hydra_error_line(error))

    # Hydra names the job (hydra.job.name, and its log file) after the task function's module.
    task.__module__ = f"fmrobot.{config_name}"
    composed = hydra.main(version_base="1.3", config_path="pkg://fmrobot.configs", config_name=config_name)(task)

    def main() -> None:
        nonlocal started
        started = False  # main() may run again in one process (tests run command lines in process)
        Plugins.instance().register(PluginConfigSearchPath)
        if {"--help", "-h"} & set(sys.argv[1:]):  # fmrobot's short help, not Hydra's config dump
            from fmrobot.help import help_text

            print(help_text(config_name), flush=True)
            return
        try:
            security.check_arguments(sys.argv[1:])
            if registry.untrusted_configs():
                check_untrusted_command(config_name, sys.argv[1:])
            if prepare is not None:
                sys.argv[1:] = prepare(sys.argv[1:])
        except FmrobotError as error:
            fail(str(error))
        # Hydra prints its own errors over several lines (and a hint about HYDRA_FULL_ERROR); raised
        # instead, the ones about the command line or config become one line here.
        report = FULL_ERROR_ENV not in os.environ
        if report:
            os.environ[FULL_ERROR_ENV] = "1"
        # What Hydra prints instead of running (--cfg, --info, --help) goes out with its secrets blanked.
        printed = io.StringIO() if _prints_config(sys.argv[1:]) else None
        try:
            if printed is None:
                composed()
            else:
                with redirect_stdout(printed):
                    composed()
        except Exception as error:
            if started or not report:  # raised by a job: fmrobot's own bug, keep the traceback
                raise
            fail(output_error_line(error) or hinted_error_line(error, config_name, sys.argv[1:])
                 or config_error_line(error))
        finally:
            if report:
                os.environ.pop(FULL_ERROR_ENV, None)
            if printed is not None:
                sys.stdout.write(security.redact_text(printed.getvalue()))
                sys.stdout.flush()

    return main
