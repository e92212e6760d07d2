"""Learned policies: features, the noise schedule, training (seeded, resumable), checkpoints, closed-loop runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fmrobot.control.bc import BcPolicy
from fmrobot.control.diffusion import DiffusionPolicy, DiffusionPolicyConfig
from fmrobot.control.learned.runtime import LearnedPolicyConfig, TrainingConfig
from fmrobot.errors import ConfigError, SkillArgumentError
from fmrobot.types import SkillCall

TINY = {"hidden": 32, "horizon": 8, "execute_steps": 4}


def _tiny(cls, steps=20, **extra):
    diffusion = issubclass(cls, DiffusionPolicy)
    config_cls = DiffusionPolicyConfig if diffusion else LearnedPolicyConfig
    options = dict(TINY, training=TrainingConfig(steps=steps, batch_size=32, warmup_steps=5), **extra)
    if diffusion:
        options.update(blocks=1, train_diffusion_steps=20, inference_steps=4)
    return config_cls(**options)


def _train(cls, dataset_path, out_dir, seed=0, **kwargs):
    from fmrobot.control.learned.training import train_policy
    from fmrobot.data.dataset import DemoDataset

    config = kwargs.pop("config", None) or _tiny(cls)
    return train_policy(cls, config, DemoDataset(dataset_path), out_dir, seed=seed, progress=False, **kwargs)


def _weights(path):
    return torch.load(path, weights_only=True)["model"]


def test_action_encoding_round_trips_through_the_anchor_frame():
    from fmrobot.data.features import SkillContext, action_row, decode_action, encode_action
    from fmrobot.types import Action, yaw_quaternion

    context = SkillContext("pick", (0.5, -0.1, 0.66), (0.04, 0.04, 0.04), 0.3, (0.0, 0.0, 0.0))
    action = Action(ee_position=(0.52, -0.08, 0.75), ee_orientation=yaw_quaternion(0.2), gripper=1.0)
    encoded = encode_action(context, action_row(action), done=True)
    assert np.allclose(encoded[:3], (0.02, 0.02, 0.09), atol=1e-6)
    decoded, done = decode_action(context, encoded)
    assert done and decoded.gripper == 1.0
    assert np.allclose(decoded.ee_position, action.ee_position, atol=1e-6)
    assert np.allclose(decoded.ee_orientation, action.ee_orientation, atol=1e-5)
    # a quarter turn further is the same grasp of a square block: same features
    turned = encode_action(context, action_row(action.model_copy(update={
        "ee_orientation": yaw_quaternion(0.2 + math.pi / 2)})), done=False)
    assert np.allclose(turned[3:5], encoded[3:5], atol=1e-5)


def test_ddim_with_the_true_noise_recovers_the_sample():
    from fmrobot.control.learned.noise_schedule import NoiseSchedule

    schedule = NoiseSchedule(100)
    clean = torch.linspace(-0.9, 0.9, 12).view(1, 4, 3)

    def true_noise(x, steps):
        a = schedule.alpha_bar[steps].view(-1, 1, 1)
        return (x - a.sqrt() * clean) / (1 - a).sqrt()

    sample = schedule.sample(true_noise, (1, 4, 3), inference_steps=5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(sample, clean, atol=1e-4)
    noisy = schedule.add_noise(clean, torch.ones_like(clean), torch.tensor([99]))
    assert noisy.abs().max() > 0.9 and not torch.allclose(noisy, clean, atol=0.1)


@pytest.mark.parametrize("cls", [BcPolicy, DiffusionPolicy])
def test_training_is_seeded(cls, demo_dataset, tmp_path):
    first = _weights(_train(cls, demo_dataset, tmp_path / "a", seed=3))
    again = _weights(_train(cls, demo_dataset, tmp_path / "b", seed=3))
    other = _weights(_train(cls, demo_dataset, tmp_path / "c", seed=4))
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_interrupted_training_resumes_to_the_same_weights(demo_dataset, tmp_path):
    class Interrupted(DiffusionPolicy):
        """Raises on the 15th loss: the process dies after the checkpoint at step 10."""

        @classmethod
        def objective(cls, architecture):
            inner, calls = DiffusionPolicy.objective(architecture), [0]

            def loss(*args):
                calls[0] += 1
                if calls[0] == 15:
                    raise KeyboardInterrupt
                return inner(*args)

            return loss

    straight = _weights(_train(DiffusionPolicy, demo_dataset, tmp_path / "straight", checkpoint_every=10))
    with pytest.raises(KeyboardInterrupt):
        _train(Interrupted, demo_dataset, tmp_path / "resumed", checkpoint_every=10)
    assert (tmp_path / "resumed" / "step_000010.pt").exists()
    assert not (tmp_path / "resumed" / "policy.pt").exists()
    resumed = _weights(_train(DiffusionPolicy, demo_dataset, tmp_path / "resumed", checkpoint_every=10))
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    # other settings in the same folder are refused, not silently mixed in
    with pytest.raises(ConfigError, match="trained with other settings"):
        _train(DiffusionPolicy, demo_dataset, tmp_path / "resumed", seed=9)


@pytest.mark.parametrize("cls", [BcPolicy, DiffusionPolicy])
def test_a_trained_checkpoint_runs_as_a_policy(cls, demo_dataset, tmp_path):
    from fmrobot.testing import check_policy, synthetic_observation, synthetic_scene

    path = _train(cls, demo_dataset, tmp_path / "run")
    policy = cls(_tiny(cls, checkpoint=str(path)))
    assert [s.name for s in policy.skills] == ["pick", "place"]
    assert policy.info["demos"] == 3 and policy.info["seed"] == 0
    actions = check_policy(policy)
    assert actions and all(np.isfinite(a.ee_position).all() for a in actions)
    with pytest.raises(SkillArgumentError, match="trained on skills pick, place; it cannot execute 'push'"):
        policy.reset(SkillCall(skill="push", args={"object": "red block", "target": "green bowl"}),
                     synthetic_scene(), synthetic_observation())


def test_a_missing_or_foreign_checkpoint_is_one_clear_error(demo_dataset, tmp_path):
    with pytest.raises(ConfigError, match=r"no checkpoint at .*nowhere\.pt; shipped checkpoints: pick_place"):
        BcPolicy(LearnedPolicyConfig(checkpoint=str(tmp_path / "nowhere.pt")))
    with pytest.raises(ConfigError, match="shipped checkpoints: pick_place"):
        DiffusionPolicy(DiffusionPolicyConfig(checkpoint="stack_blocks"))
    bc = _train(BcPolicy, demo_dataset, tmp_path / "bc")
    with pytest.raises(ConfigError, match="holds a policy=bc checkpoint, not policy=diffusion"):
        DiffusionPolicy(DiffusionPolicyConfig(checkpoint=str(bc)))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"junk\.pt is not a policy checkpoint: expected a file written by torch"):
        BcPolicy(LearnedPolicyConfig(checkpoint=str(tmp_path / "junk.pt")))


def test_a_text_file_or_a_pickled_object_as_checkpoint_says_what_is_wrong_without_suggesting_unsafe_loading(tmp_path):
    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(ConfigError, match="passwd is not a policy checkpoint") as caught:
        BcPolicy(LearnedPolicyConfig(checkpoint=str(text)))
    assert "index" not in str(caught.value)
    torch.save({"format": "fmrobot-policy", "payload": _Pickled()}, tmp_path / "pickled.pt")
    with pytest.raises(ConfigError, match="holds Python objects besides tensors") as caught:
        BcPolicy(LearnedPolicyConfig(checkpoint=str(tmp_path / "pickled.pt")))
    assert "weights_only" not in str(caught.value) and "\n" not in str(caught.value)


class _Pickled:
    """A class instance: torch.load(weights_only=True) refuses it."""


@pytest.mark.parametrize("name", ["bc", "diffusion"])
def test_shipped_checkpoints_load_by_default_and_say_how_they_were_made(name):
    from fmrobot import registry
    from fmrobot.control.learned.runtime import checkpoint_path

    path = checkpoint_path(name, "pick_place")
    assert path.stat().st_size <= 25 * 1024 * 1024
    policy = registry.resolve("policy", {"name": name}).build()
    info = policy.info
    assert info["command"].startswith(f"python -m fmrobot.train policy={name} task=pick_place")
    assert info["seed"] == 0 and info["demos"] == 200


@pytest.mark.parametrize("name", ["bc", "diffusion"])
def test_shipped_policy_puts_the_block_in_the_bowl(name):
    """Closed loop in the simulator, oracle perception and plan: the policy alone decides the motion."""
    from fmrobot.stack import build_runner
    from tests.fakes import compose_config

    runner = build_runner(compose_config(["task=pick_place", "perception=oracle", "planner=oracle",
                                          f"policy={name}"]))
    try:
        results = [runner.run_episode(seed).result for seed in (0, 1)]
    finally:
        runner.env.close()
    assert all(r.success for r in results), [r.failure_reason for r in results]
    assert all(r.replans == 0 and r.skill_calls == 2 for r in results)


def test_train_collects_missing_demonstrations_first(tmp_path, capsys):
    from fmrobot.train import train
    from tests.fakes import compose_config

    data = tmp_path / "demos.zarr"
    config = compose_config(["policy=bc", "task=pick_place", "episodes=2", "executor.workers=1",
                             f"dataset.path={data}", f"train.out_dir={tmp_path / 'out'}", "train.threads=1",
                             "policy.hidden=16", "policy.training.steps=5", "policy.training.batch_size=8"],
                            name="train")
    assert config["seed"] == 1000  # demonstrations come from seeds the evaluation does not use
    path = train(config, command="test", progress=False)
    assert data.exists() and path == tmp_path / "out" / "policy.pt"
    from fmrobot.data.dataset import DemoDataset

    # the demonstrations come from the scripted demonstrator, not from the policy being trained
    assert DemoDataset(data).config["policy"]["name"] == "scripted"
    assert "collecting 2 demonstrations first" in capsys.readouterr().err
    assert BcPolicy(LearnedPolicyConfig(checkpoint=str(path), hidden=16)).info["demos"] == 2


def test_training_keeps_only_the_newest_periodic_checkpoints(demo_dataset, tmp_path):
    _train(BcPolicy, demo_dataset, tmp_path, checkpoint_every=5, keep_checkpoints=2)
    assert sorted(p.name for p in tmp_path.glob("step_*.pt")) == ["step_000015.pt", "step_000020.pt"]
    assert (tmp_path / "last.pt").exists() and (tmp_path / "policy.pt").exists()


def test_train_refuses_what_it_cannot_train_in_one_line():
    from fmrobot.train import train
    from tests.fakes import compose_config

    with pytest.raises(ConfigError, match="policy=scripted is not trainable; trainable policies: bc, diffusion"):
        train(compose_config(["policy=scripted"], name="train"), progress=False)
    with pytest.raises(ConfigError, match="invalid train settings: demos"):
        train(compose_config(["train.demos=0"], name="train"), progress=False)
