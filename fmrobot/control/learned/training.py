"""Train a learned skill policy on a demonstration dataset, on the CPU, reproducibly and resumably.

The run folder holds `last.pt` (everything needed to continue: weights, averaged weights,
optimizer, learning-rate schedule, sampling generator, step), refreshed every
`checkpoint_every` steps and kept as `step_<n>.pt` too, and at the end `policy.pt`: the
averaged (EMA) weights in the format `policy.checkpoint=<path>` loads. Interrupted runs
continue from `last.pt` and end with the same weights as an uninterrupted run: batches
and noise come from one seeded generator whose state is saved with the rest.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from fmrobot.control.learned.runtime import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, ChunkedSkillPolicy
from fmrobot.control.learned.samples import build_samples
from fmrobot.data.dataset import DemoDataset
from fmrobot.errors import ConfigError
from fmrobot.provenance import commit as _commit


def train_policy(policy_cls: type[ChunkedSkillPolicy], config, dataset: DemoDataset, out_dir: Path, *, seed: int,
                 demos: int | None = None, checkpoint_every: int = 1000, keep_checkpoints: int = 3,
                 resume: bool = True, progress: bool = True, command: str | None = None, logger=None) -> Path:
    """Train `policy_cls` with `config` (its Config) on `dataset`; return the path of policy.pt.
    `logger` (fmrobot/control/learned/training_log.py), if given, receives the losses as training goes."""
    import torch
    from tqdm import tqdm

    from fmrobot.control.learned.models import conditioning

    training = config.training
    samples = build_samples(dataset, config.horizon, config.obs_horizon, max_episodes=demos)
    if demos is not None and samples.episodes < demos:
        raise ConfigError(f"train.demos={demos}, but {dataset.path} has only {samples.episodes} successful "
                          "demonstrations; collect more (episodes=<n>) or ask for fewer")
    num_skills = len(samples.skill_names)
    architecture = policy_cls.architecture(config, num_skills)
    fingerprint = _fingerprint(policy_cls.kind, config, dataset, samples.episodes, seed)
    out_dir.mkdir(parents=True, exist_ok=True)

    observations = torch.from_numpy(samples.observations)
    actions = torch.from_numpy(samples.actions)
    skills = torch.from_numpy(samples.skills)
    with torch.random.fork_rng():  # initial weights from the run's seed, without touching anyone's global state
        torch.manual_seed(seed)
        model, normalizer = policy_cls.build_networks(architecture, num_skills)
    normalizer.fit(observations, actions)
    average = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=training.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(training.warmup_steps, training.steps))
    generator = torch.Generator().manual_seed(seed)
    loss_fn = policy_cls.objective(architecture)
    step, losses = 0, []

    last = out_dir / "last.pt"
    if last.exists() and resume:
        state = torch.load(last, map_location="cpu", weights_only=True)
        if state["fingerprint"] != fingerprint:
            raise ConfigError(f"{last} was trained with other settings (policy, its config, dataset, demos or "
                              f"seed differ); pass train.resume=false to start over, or another train.out_dir")
        model.load_state_dict(state["model"])
        average.load_state_dict(state["average"])
        normalizer.load_state_dict(state["normalizer"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        step, losses = int(state["step"]), list(state["losses"])

    def save_progress() -> None:
        state = {"fingerprint": fingerprint, "model": model.state_dict(), "average": average.state_dict(),
                 "normalizer": normalizer.state_dict(), "optimizer": optimizer.state_dict(),
                 "schedule": schedule.state_dict(), "generator": generator.get_state(), "step": step,
                 "losses": losses}
        _atomic_save(torch, state, out_dir / f"step_{step:06d}.pt")
        _atomic_save(torch, state, last)
        for old in sorted(out_dir.glob("step_*.pt"))[:-keep_checkpoints]:  # each is ~4x the policy's size
            old.unlink()

    # The normalizer is fixed from here on: condition and scale every sample once, not every batch.
    with torch.no_grad():
        conditions = conditioning(normalizer, observations, skills, num_skills)
        targets = normalizer.actions(actions)

    started = time.perf_counter()
    model.train()
    with tqdm(total=training.steps, initial=step, desc=f"train {policy_cls.kind}", unit="step", file=sys.stderr,
              dynamic_ncols=True, disable=not progress, mininterval=1.0) as bar:
        while step < training.steps:
            index = torch.randint(0, len(skills), (training.batch_size,), generator=generator)
            loss = loss_fn(model, conditions[index], targets[index], generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            decay = min(training.ema_decay, (1.0 + step) / (10.0 + step))
            with torch.no_grad():
                for avg, live in zip(average.parameters(), model.parameters()):
                    avg.lerp_(live, 1.0 - decay)
            losses.append(loss.item())
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
            if logger is not None and step % 10 == 0:
                logger.scalars(step, {"train/loss": float(np.mean(losses[-10:])),
                                      "train/lr": schedule.get_last_lr()[0]})
            if step % checkpoint_every == 0 or step == training.steps:
                save_progress()

    checkpoint = {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": policy_cls.kind,
        "skills": samples.skill_names, "horizon": config.horizon, "obs_horizon": config.obs_horizon,
        "max_call_frames": samples.max_call_frames, "architecture": architecture,
        "model": average.state_dict(), "normalizer": normalizer.state_dict(),
        "info": {
            "command": command, "commit": _commit(), "seed": seed, "dataset": str(dataset.path), "dataset_episodes": dataset.num_episodes,
            "demos": samples.episodes, "samples": len(samples), "steps": training.steps,
            "final_loss": float(np.mean(losses[-200:])), "train_seconds_this_run": round(time.perf_counter() - started, 1),
            "config": config.model_dump(mode="json"), "fingerprint": fingerprint,
        },
    }
    path = out_dir / "policy.pt"
    _atomic_save(torch, checkpoint, path)
    (out_dir / "losses.json").write_text(json.dumps(losses))
    if logger is not None:
        info = checkpoint["info"]
        logger.finish(step, losses, {k: info[k] for k in ("final_loss", "samples", "demos", "dataset_episodes",
                                                          "steps", "train_seconds_this_run")})
    return path


def _warmup_cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def _fingerprint(kind: str, config, dataset: DemoDataset, demos: int, seed: int) -> str:
    what = {"kind": kind, "config": config.model_dump(mode="json"), "dataset_seeds": dataset.seeds.tolist(),
            "dataset_frames": dataset.num_frames, "demos": demos, "seed": seed}
    what["config"].pop("checkpoint", None)
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def _atomic_save(torch, value: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(value, tmp)
    tmp.replace(path)
