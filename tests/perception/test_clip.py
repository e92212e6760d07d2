"""CLIP perception offline: tiny random open_clip models through the loader users get."""

import numpy as np
import pytest
import torch

from fmrobot import registry
from fmrobot.errors import ConfigError
from fmrobot.perception.clip import choose_labels
from fmrobot.perception.clip_model import crop_boxes, load_clip, register_config
from fmrobot.testing import SYNTHETIC_OBJECTS, check_perceptor, synthetic_observation
from tests.fakes import TINY_CLIP_CONFIG


def build(**options):
    return registry.resolve("perception", {"name": "clip", **options}).build()


def test_model_folder_loads_and_the_perceptor_conforms(tiny_clip_dir):
    perceptor = build(model=str(tiny_clip_dir))
    scene = check_perceptor(perceptor, obs=synthetic_observation(width=320, height=240))
    assert scene.source == "clip"
    assert all(o.label in SYNTHETIC_OBJECTS for o in scene.objects)
    assert len({o.label for o in scene.objects}) == len(scene.objects)  # unique assignment
    assert perceptor.lexicon is not None and perceptor.temperature == 0.05


def test_open_clip_name_with_a_checkpoint_file(tmp_path):
    import open_clip

    name = register_config("fmrobot-test-tiny-file", TINY_CLIP_CONFIG)
    model = open_clip.create_model(name)
    torch.save(model.state_dict(), tmp_path / "tiny.pt")
    perceptor = build(model=name, pretrained=str(tmp_path / "tiny.pt"), temperature=0.1)
    loaded = perceptor.clip.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    check_perceptor(perceptor, obs=synthetic_observation(width=320, height=240))


def test_load_errors_say_what_was_asked_for(tmp_path):
    with pytest.raises(ConfigError, match="has no open_clip_config.json"):
        load_clip(str(tmp_path))
    with pytest.raises(ConfigError, match="could not load CLIP model 'ViT-B-32' with pretrained='openai'"):
        load_clip("ViT-B-32", "openai")  # a hub download: impossible offline


def test_negatives_drop_proposals_and_unique_assignment_resolves_conflicts():
    # columns: query a, query b, negative
    p = np.array([[0.6, 0.3, 0.1],   # a
                  [0.5, 0.4, 0.1],   # wants a too; unique gives it b
                  [0.1, 0.1, 0.8]])  # background
    assert choose_labels(p, 2, "unique", 0.0) == [(0, 0, 0.6), (1, 1, 0.4)]
    assert choose_labels(p, 2, "best", 0.0) == [(0, 0, 0.6), (1, 0, 0.5)]
    assert choose_labels(p, 2, "unique", 0.45) == [(0, 0, 0.6)]


def test_crops_are_square_around_the_box_and_black_outside_the_image():
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[5:10, 10:20] = 255
    crop = crop_boxes(rgb, [(10, 5, 20, 10)], size=10, margin=0.0)[0]
    assert crop.shape == (10, 10, 3)
    assert crop[:2].max() < 60 and crop[4:6, 2:8].min() > 200  # the white bar fills the middle rows
    edge = crop_boxes(rgb, [(-10, -10, 2, 2)], size=8, margin=0.0)[0]
    assert edge.max() == 0
