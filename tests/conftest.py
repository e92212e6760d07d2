"""Shared test setup: one thread per library (a busy 2-core machine slows 10-100x otherwise)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def pick_place_env():
    """One tabletop env for the session: building a physics client and renderer costs ~1 s."""
    from sims.env import TabletopEnv

    env = TabletopEnv(task="pick_place")
    yield env
    env.close()


@pytest.fixture(scope="session")
def default_config() -> dict:
    """The composed default run config, as `python -m fmrobot.run` would see it."""
    from tests.fakes import compose_config

    return compose_config([])


@pytest.fixture(scope="session")
def tiny_owlvit_dirs(tmp_path_factory) -> dict:
    """Tiny random OWL-ViT and OWLv2 models with a real CLIP tokenizer, saved once per session."""
    from tests.fakes import clip_tokenizer, save_tiny_owlvit

    root = tmp_path_factory.mktemp("owl")
    tokenizer = clip_tokenizer(root / "clip_tokenizer")
    return {kind: save_tiny_owlvit(kind, root / kind, tokenizer) for kind in ("owlvit", "owlv2")}


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    """A tiny random open_clip model saved as a model folder (open_clip's local-dir layout)."""
    from tests.fakes import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny", colors={"red": [0.85, 0.12, 0.12],
                                                                           "green": [0.15, 0.65, 0.2]})


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> str:
    """A tiny random causal LM (Llama) with its own tokenizer, saved once per session."""
    from tests.fakes import save_tiny_causal_lm

    return save_tiny_causal_lm(tmp_path_factory.mktemp("lm") / "tiny")


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory):
    """Three oracle pick_place demonstrations (seeds 5-7), collected through `fmrobot.collect`."""
    from fmrobot.collect import collect
    from tests.fakes import compose_config

    path = tmp_path_factory.mktemp("demos") / "pick_place.zarr"
    config = compose_config(["task=pick_place", "episodes=3", "seed=5", f"dataset.path={path}"], name="collect")
    collect(config, quiet=True)
    return path
