"""The LiT training script end to end on a tiny rendered dataset, and the held-out wall."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import heldout_phrases
from fmrobot.perception.train_lit import (
    NEGATIVE_CAPTIONS,
    OBJECT_CAPTIONS,
    PROMPT_TEMPLATES,
    SHAPE_NOUNS,
    negative_prompts,
)
from sims.objects import COLORS

ROOT = Path(__file__).resolve().parents[2]


def test_no_training_caption_or_prompt_uses_a_heldout_word():
    texts = [t.format(color=c, noun=n) for t in OBJECT_CAPTIONS for c in COLORS for ns in SHAPE_NOUNS.values()
             for n in ns]
    texts += [t.format(color=c, shape=s) for ts in NEGATIVE_CAPTIONS.values() for t in ts for c in COLORS
              for s in ("object", "cylinder", "ball")]
    texts += [t.format(label) for t in PROMPT_TEMPLATES for label in negative_prompts(COLORS)]
    used = {word for text in texts for word in text.lower().split()}
    assert not used & heldout_phrases.all_words()


@pytest.mark.slow
def test_generate_train_and_load_through_the_perceptor(tmp_path, pick_place_env):
    data, model = tmp_path / "crops", tmp_path / "model"
    for command in (
        [sys.executable, "-m", "sims.datasets.perception_crops", "--out", str(data), "--scenes", "3",
         "--exclude", "purple:bowl"],
        [sys.executable, "-m", "fmrobot.perception.train_lit", "--data", str(data), "--out", str(model),
         "--steps", "4", "--batch", "16", "--val-every", "3"],
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    meta = json.loads((data / "meta.json").read_text())
    labels = [json.loads(line) for line in (data / "labels.jsonl").read_text().splitlines()]
    assert meta["crops"] == len(labels) > 10 and meta["exclude"] == ["purple:bowl"]
    assert not any(r.get("color") == "purple" and r.get("shape") == "bowl" for r in labels)
    document = json.loads((model / "open_clip_config.json").read_text())
    notes = document["fmrobot"]
    assert notes["training"]["command"].startswith("python -m fmrobot.perception.train_lit")
    assert notes["training"]["seed"] == 0 and 0 < notes["temperature"] < 1
    assert (model / "open_clip_model.safetensors").stat().st_size < 25e6

    from fmrobot import registry

    perceptor = registry.resolve("perception", {"name": "clip", "model": str(model)}).build()
    _, obs = pick_place_env.reset_episode(0)
    scene = perceptor.perceive(pick_place_env.observe(images=True), ["red block", "green bowl"])
    assert all(o.label in ("red block", "green bowl") for o in scene.objects)
