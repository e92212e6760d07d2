"""The shipped tabletop-lit checkpoint, checked against held-out rendered scenes."""

import json

import numpy as np
import pytest

from fmrobot import registry
from fmrobot.perception.clip_model import SHIPPED

HELDOUT_SEEDS = range(200_000, 200_008)  # pick_place scenes used by no training run or benchmark


@pytest.fixture(scope="module")
def perceptor():
    return registry.resolve("perception", {"name": "clip"}).build()


def test_checkpoint_is_small_and_records_how_to_reproduce_it():
    folder = SHIPPED["tabletop-lit"]
    assert (folder / "open_clip_model.safetensors").stat().st_size < 25e6
    training = json.loads((folder / "open_clip_config.json").read_text())["fmrobot"]["training"]
    assert training["command"].startswith("python -m fmrobot.perception.train_lit") and training["seed"] == 0
    assert "python -m sims.datasets.perception_crops" in (folder / "MODEL_CARD.md").read_text()


def test_names_and_locates_every_object_of_heldout_scenes(perceptor, pick_place_env):
    env = pick_place_env
    vocabulary = list(env.task.spec().vocabulary)
    correct, total, errors = 0, 0, []
    for seed in HELDOUT_SEEDS:
        env.reset_episode(seed)
        scene = perceptor.perceive(env.observe(images=True), vocabulary)
        for label in env.world.bodies:
            total += 1
            if scene.has(label):
                correct += 1
                found = scene.find(label).position
                errors.append(np.hypot(*(np.asarray(found[:2]) - env.world.position(label)[:2])))
    assert correct / total >= 0.9, f"{correct}/{total} objects named"
    assert np.median(errors) < 0.015


def test_heldout_phrases_resolve(perceptor, pick_place_env):
    env = pick_place_env
    env.reset_episode(HELDOUT_SEEDS[0])
    obs = env.observe(images=True)
    queries = {label: label for label in env.world.bodies}
    synonyms = {"red": "crimson", "cyan": "teal", "block": "cube", "bowl": "dish", "gray": "grey", "green": "emerald"}
    for label in queries:
        color, shape = label.split()
        queries[label] = f"the {synonyms.get(color, color)} {synonyms.get(shape, shape)}"
    scene = perceptor.perceive(obs, list(queries.values()))
    named = sum(scene.has(phrase) and np.hypot(*(np.asarray(scene.find(phrase).position[:2])
                                                 - env.world.position(label)[:2])) < 0.03
                for label, phrase in queries.items())
    assert named >= len(queries) - 1, f"{named} of {len(queries)}: {queries} -> {scene.labels}"
