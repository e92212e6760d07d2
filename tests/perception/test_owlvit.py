"""OWL-ViT / OWLv2 perception, offline: tiny random models saved to disk and built through the registry.

A random detector finds garbage, so these tests check the contract (labels are queries,
scores above the threshold, finite geometry, boxes inside the image), the post-processing
on hand-made tensors, the load errors, and the 3-D lifting with faked detector output.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import (
    CLIPTextConfig,
)

from fmrobot import registry
from fmrobot.errors import ConfigError
from fmrobot.perception.lifting import box_of_mask
from fmrobot.perception.owlvit import select_detections, to_pixel_boxes
from fmrobot.testing import SYNTHETIC_OBJECTS, check_perceptor, synthetic_observation
from tests.fakes import OWL_IMAGE_SIZE as IMAGE_SIZE

KINDS = ("owlvit", "owlv2")
QUERIES = list(SYNTHETIC_OBJECTS)  # ["red block", "green bowl"]
THRESHOLD = 0.3


@pytest.fixture(scope="module")
def model_dirs(tiny_owlvit_dirs) -> dict[str, Path]:
    return tiny_owlvit_dirs


def build(model: Path | str, **options):
    """The perceptor as users get it: config node -> registry -> build."""
    return registry.resolve("perception", {"name": "owlvit", "model": str(model), **options}).build()


@pytest.fixture(scope="module")
def perceptors(model_dirs) -> dict:
    return {kind: build(model_dirs[kind], score_threshold=THRESHOLD) for kind in KINDS}


# --------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("kind", KINDS)
def test_tiny_model_conforms_and_reports_only_queried_labels(perceptors, kind):
    perceptor = perceptors[kind]
    assert perceptor.padded_square == (kind == "owlv2")
    scene = check_perceptor(perceptor)  # also checks that a second call gives the same scene
    assert scene.source == "owlvit"
    assert scene.objects, "grid-cell boxes over the objects should reach the lifting"
    height, width = synthetic_observation().frames[0].rgb.shape[:2]
    for obj in scene.objects:
        assert obj.label in QUERIES
        assert THRESHOLD <= obj.score <= 1.0
        assert np.all(np.isfinite(obj.position)) and obj.num_points >= 10 and obj.camera == "top"
        x0, y0, x1, y1 = obj.box_2d
        assert 0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height
    assert len(scene.objects) <= perceptor.config.max_detections
    scores = [o.score for o in scene.objects]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("kind", KINDS)
def test_split_forward_reproduces_the_models_own_forward(perceptors, kind):
    """The image pass / text pass / heads split gives the logits and boxes of model(**inputs)."""
    perceptor = perceptors[kind]
    rgb = np.array(synthetic_observation().frames[0].rgb)
    logits, boxes = perceptor._predict(rgb, QUERIES)
    inputs = perceptor.processor(text=[f"a photo of a {q}." for q in QUERIES], images=rgb, return_tensors="pt")
    with torch.no_grad():
        expected = perceptor.model(**inputs)
    assert logits.shape == (16, len(QUERIES))
    assert torch.allclose(logits, expected.logits[0], atol=1e-4)
    assert torch.allclose(boxes, expected.pred_boxes[0], atol=1e-5)


def test_prompt_ensemble_averages_the_unit_text_embeddings(model_dirs):
    first, second = "a photo of a {}.", "a close-up photo of the {}."
    single = [build(model_dirs["owlvit"], prompt_templates=[t])._query_embeddings(QUERIES) for t in (first, second)]
    both = build(model_dirs["owlvit"], prompt_templates=[first, second])._query_embeddings(QUERIES)
    assert torch.allclose(torch.linalg.norm(single[0], dim=-1), torch.ones(len(QUERIES)), atol=1e-5)
    assert torch.allclose(both, (single[0] + single[1]) / 2, atol=1e-5)
    assert not torch.allclose(single[0], single[1])


def test_templates_without_a_slot_are_refused_before_loading():
    with pytest.raises(ConfigError, match="prompt_templates.*needs exactly one"):
        registry.resolve("perception", {"name": "owlvit", "prompt_templates": ["a photo"]})


# --------------------------------------------------------------------------- post-processing


def _boxes(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_selection_keeps_the_best_query_per_box_above_the_threshold():
    scores = torch.tensor([[0.9, 0.2], [0.05, 0.08], [0.3, 0.6]])
    boxes = _boxes([0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 110, 110])
    got = select_detections(scores, boxes, score_threshold=0.1, nms_iou=0.3)
    assert [(d.query, round(d.score, 3), d.box) for d in got] == [
        (0, 0.9, (0.0, 0.0, 10.0, 10.0)),
        (1, 0.6, (100.0, 100.0, 110.0, 110.0)),
    ]
    assert select_detections(scores, boxes, score_threshold=0.95, nms_iou=0.3) == []
    assert select_detections(torch.zeros(0, 2), torch.zeros(0, 4), 0.1, 0.3) == []


def test_nms_merges_overlapping_boxes_of_one_label_but_keeps_other_labels():
    boxes = _boxes([0, 0, 10, 10], [1, 0, 11, 10], [0, 1, 10, 11])  # pairwise IoU about 0.8
    scores = torch.tensor([[0.9, 0.0], [0.8, 0.0], [0.0, 0.7]])
    got = select_detections(scores, boxes, score_threshold=0.1, nms_iou=0.3)
    assert [(d.query, d.box) for d in got] == [(0, (0.0, 0.0, 10.0, 10.0)), (1, (0.0, 1.0, 10.0, 11.0))]
    assert len(select_detections(scores, boxes, score_threshold=0.1, nms_iou=0.9)) == 3


def test_max_detections_keeps_the_best_ones():
    boxes = torch.stack([torch.tensor([20.0 * i, 0, 20.0 * i + 10, 10]) for i in range(10)])
    scores = torch.linspace(0.1, 1.0, 10)[:, None]
    got = select_detections(scores, boxes, score_threshold=0.0, nms_iou=0.3, max_detections=3)
    assert [round(d.score, 2) for d in got] == [1.0, 0.9, 0.8]


def test_owlvit_boxes_scale_each_axis_by_its_own_size():
    boxes = _boxes([0.5, 0.5, 1.0, 1.0], [0.25, 0.75, 0.5, 0.5], [0.9, 0.5, 0.4, 0.2])
    assert to_pixel_boxes(boxes, 160, 120, padded_square=False).tolist() == [
        [0, 0, 160, 120], [0, 60, 80, 120], [pytest.approx(112), pytest.approx(48), 160, pytest.approx(72)]
    ]


def test_owlv2_boxes_are_relative_to_the_padded_square():
    # A 160 x 120 image is padded to 160 x 160 at the bottom: it fills y in [0, 0.75].
    wide = to_pixel_boxes(_boxes([0.5, 0.375, 1.0, 0.75], [0.5, 0.5, 0.5, 0.5]), 160, 120, padded_square=True)
    assert wide.tolist() == [[0, 0, 160, 120], [40, 40, 120, 120]]
    # A 90 x 120 image is padded on the right: it fills x in [0, 0.75].
    tall = to_pixel_boxes(_boxes([0.375, 0.5, 0.75, 1.0]), 90, 120, padded_square=True)
    assert tall.tolist() == [[0, 0, 90, 120]]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("width,height", [(160, 120), (90, 120)])
def test_box_scaling_agrees_with_transformers_post_processing(perceptors, kind, width, height):
    perceptor = perceptors[kind]
    generator = torch.Generator().manual_seed(0)
    outputs = SimpleNamespace(logits=torch.randn(1, 16, 2, generator=generator),
                              pred_boxes=0.2 + 0.6 * torch.rand(1, 16, 4, generator=generator))
    expected = perceptor.processor.image_processor.post_process_object_detection(
        outputs, threshold=0.0, target_sizes=[(height, width)])[0]["boxes"]
    limits = torch.tensor([width, height, width, height], dtype=torch.float32)
    expected = torch.minimum(expected.clamp(min=0), limits)  # ours are clipped to the image
    got = to_pixel_boxes(outputs.pred_boxes[0], width, height, perceptor.padded_square)
    assert torch.allclose(got, expected, atol=1e-4)


def test_owlv2_processor_pads_bottom_and_right_as_the_scaling_assumes(perceptors):
    image_processor = perceptors["owlv2"].processor.image_processor
    for height, width in ((120, 160), (160, 120)):
        white = np.full((height, width, 3), 255, np.uint8)
        pixels = image_processor(images=white, return_tensors="pt")["pixel_values"][0, 0]  # (64, 64), red
        image = pixels > 0  # white normalises above 0, the zero padding below
        rows, cols = int(image[:, 0].sum()), int(image[0, :].sum())
        # The image fills its share of the square from the top-left corner (blur blurs one pixel).
        assert rows == pytest.approx(IMAGE_SIZE * height / max(height, width), abs=1.5)
        assert cols == pytest.approx(IMAGE_SIZE * width / max(height, width), abs=1.5)
        assert bool(image[0, 0]) and not bool(image[-1, -1])


# --------------------------------------------------------------------------- load errors


def test_a_missing_local_directory_is_one_clear_config_error(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError) as info:
        build(missing)
    message = str(info.value)
    assert f"'{missing}'" in message and "no such directory" in message
    assert "local directory" in message and "\n" not in message


def test_an_uncached_hub_id_offline_is_one_clear_config_error():
    with pytest.raises(ConfigError) as info:
        build("nobody-here/owlvit-nothing")
    message = str(info.value)
    assert "'nobody-here/owlvit-nothing' is a Hugging Face hub id that is not in the local cache" in message
    assert "local folder" in message and "\n" not in message


def test_a_directory_without_tokenizer_files_is_refused(model_dirs, tmp_path):
    broken = tmp_path / "no-tokenizer"
    shutil.copytree(model_dirs["owlvit"], broken)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        (broken / name).unlink(missing_ok=True)
    with pytest.raises(ConfigError, match=r"vocabulary of \d+ tokens"):
        build(broken)


def test_a_model_that_is_not_owlvit_is_refused(tmp_path):
    CLIPTextConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="not OWL-ViT or OWLv2"):
        build(tmp_path)


# --------------------------------------------------------------------------- lifting


def _normalised(box, width: int, height: int, padded_square: bool) -> list[float]:
    """Pixel x0, y0, x1, y1 -> the detector's normalised cx, cy, w, h."""
    x0, y0, x1, y1 = box
    sx, sy = (max(width, height),) * 2 if padded_square else (width, height)
    return [(x0 + x1) / 2 / sx, (y0 + y1) / 2 / sy, (x1 - x0) / sx, (y1 - y0) / sy]


@pytest.fixture
def faked(perceptors, monkeypatch):
    """A perceptor whose detector reports a box per synthetic object plus a higher-scoring empty one."""

    def fake(kind: str, obs):
        perceptor = perceptors[kind]
        frame = obs.frames[0]
        height, width = frame.rgb.shape[:2]
        segmentation = np.asarray(frame.segmentation)
        ids = {label: body for body, label in obs.segmentation_labels.items()}
        boxes = {label: box_of_mask(segmentation == ids[label]) for label in QUERIES}
        pixel_boxes = [
            (0.0, 0.0, 30.0, 30.0),  # bare table in a corner: no foreground
            tuple(v + d for v, d in zip(boxes["red block"], (-3, -3, 3, 3))),
            tuple(v + d for v, d in zip(boxes["green bowl"], (-2, -2, 2, 2))),
        ]
        logits = torch.tensor([[4.0, -4.0], [3.0, -4.0], [-4.0, 2.0]])
        raw = torch.tensor([_normalised(b, width, height, perceptor.padded_square) for b in pixel_boxes])
        monkeypatch.setattr(perceptor, "_predict", lambda rgb, labels: (logits, raw))
        return perceptor, pixel_boxes

    return fake


@pytest.mark.parametrize("kind", KINDS)
def test_boxes_lift_to_the_objects_and_empty_boxes_are_skipped(faked, kind):
    obs = synthetic_observation(width=320, height=240)
    perceptor, pixel_boxes = faked(kind, obs)
    scene = perceptor.perceive(obs, QUERIES)
    assert scene.labels == ["red block", "green bowl"]  # by score; the empty table box is gone
    for obj, box in zip(scene.objects, pixel_boxes[1:]):
        x, y, _, _ = SYNTHETIC_OBJECTS[obj.label]
        assert abs(obj.position[0] - x) < 0.01 and abs(obj.position[1] - y) < 0.01
        assert obj.box_2d == pytest.approx(box, abs=1e-3)
        assert obj.camera == "top" and obj.num_points >= 10
    assert scene.objects[0].score == pytest.approx(torch.sigmoid(torch.tensor(3.0)).item())


def test_max_detections_counts_lifted_objects_only(faked, monkeypatch):
    obs = synthetic_observation(width=320, height=240)
    perceptor, _ = faked("owlvit", obs)
    monkeypatch.setattr(perceptor, "config", perceptor.config.model_copy(update={"max_detections": 1}))
    assert perceptor.perceive(obs, QUERIES).labels == ["red block"]


# --------------------------------------------------------------------------- frames and queries


def test_frames_and_queries_are_checked(perceptors, monkeypatch):
    perceptor = perceptors["owlvit"]
    obs = synthetic_observation()
    with pytest.raises(ValueError, match="needs camera frames"):
        perceptor.perceive(obs.model_copy(update={"frames": ()}), QUERIES)
    monkeypatch.setattr(perceptor, "config", perceptor.config.model_copy(update={"camera": "side"}))
    with pytest.raises(ValueError, match="no camera frame named 'side'.*'top'"):
        perceptor.perceive(obs, QUERIES)
    monkeypatch.setattr(perceptor, "_predict", lambda *_: pytest.fail("no queries: no detector pass"))
    monkeypatch.setattr(perceptor, "config", perceptor.config.model_copy(update={"camera": "top"}))
    assert perceptor.perceive(obs, []).objects == ()
