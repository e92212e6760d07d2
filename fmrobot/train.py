"""`python -m fmrobot.train policy=diffusion task=pick_place`: train a learned policy on demonstrations.

It finds (or first collects, see fmrobot/collect.py) the dataset of the configured task (a zarr
dataset, or a LeRobot v3.0 folder: `dataset.path=<folder with meta/info.json>`),
trains the policy the `policy` group names on it (fmrobot/control/learned/training.py)
and writes `<out_dir>/policy.pt`, which `policy.checkpoint=<that path>` runs. The last
line printed names it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fmrobot import registry
from fmrobot.cli import hydra_command, plain
from fmrobot.errors import ConfigError


class TrainSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(default=0, ge=0)
    demos: int | None = Field(default=None, ge=1)
    threads: int = Field(default=2, ge=1)
    checkpoint_every: int = Field(default=1000, ge=1)
    keep_checkpoints: int = Field(default=3, ge=1)
    resume: bool = True
    out_dir: str | None = None
    logger: Literal["none", "tensorboard"] = "none"  # tensorboard: <out_dir>/tensorboard besides the progress bar


def train(config: dict[str, Any], command: str | None = None, progress: bool = True) -> Path:
    """Train what `config` asks for; return the path of the trained policy.pt."""
    import torch

    from fmrobot.collect import DatasetSettings, collect, default_dataset_path
    from fmrobot.control.learned.runtime import ChunkedSkillPolicy
    from fmrobot.control.learned.training import train_policy
    from fmrobot.control.learned.training_log import make_logger
    from fmrobot.data.dataset import open_dataset

    try:
        settings = TrainSettings.model_validate(config.get("train") or {})
        dataset_settings = DatasetSettings.model_validate(config.get("dataset") or {})
    except ValidationError as error:
        raise ConfigError(f"invalid train settings: {registry.describe_errors(error)}") from None
    policy = registry.resolve("policy", config["policy"])
    if not (isinstance(policy.cls, type) and issubclass(policy.cls, ChunkedSkillPolicy)):
        raise ConfigError(f"policy={policy.name} is not trainable; trainable policies: bc, diffusion")
    path = Path(dataset_settings.path).expanduser() if dataset_settings.path else default_dataset_path(config)
    if not path.exists():
        print(f"train: no dataset at {path}; collecting {config.get('episodes')} demonstrations first",
              file=sys.stderr, flush=True)
        # The policy group names the policy being trained; the demonstrations come from the demonstrator.
        demonstrations = {k: v for k, v in config.items() if k not in ("train", "demonstrator")}
        demonstrations.update(policy=config["demonstrator"],
                              dataset={**(config.get("dataset") or {}), "path": str(path), "overwrite": False})
        collect(demonstrations, quiet=not progress)
    dataset = open_dataset(path)
    task = config["task"].get("name", "task")
    count = settings.demos or dataset.num_episodes
    out_dir = Path(settings.out_dir or f"outputs/train/{task}-{policy.cls.kind}-n{count}-seed{settings.seed}")
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        result = train_policy(policy.cls, policy.config, dataset, out_dir, seed=settings.seed, demos=settings.demos,
                              checkpoint_every=settings.checkpoint_every,
                              keep_checkpoints=settings.keep_checkpoints, resume=settings.resume,
                              progress=progress, command=command, logger=make_logger(settings.logger, out_dir))
    finally:
        torch.set_num_threads(threads)
    print(f"train: policy={policy.cls.kind} trained on {dataset.describe()}; checkpoint {result} "
          f"(run it with policy={policy.cls.kind} policy.checkpoint={result})", flush=True)
    return result


main = hydra_command("train", lambda cfg: train(plain(cfg), command=" ".join(["python -m fmrobot.train",
                                                                             *sys.argv[1:]])))


if __name__ == "__main__":
    main()
