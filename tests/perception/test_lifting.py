import numpy as np
import pytest

from fmrobot.perception.lifting import backproject, box_of_mask, footprint_yaw, lift
from fmrobot.perception.oracle import OraclePerceptor
from fmrobot.testing import SYNTHETIC_OBJECTS, TABLE_Z, check_perceptor, synthetic_observation


def test_backprojection_puts_table_pixels_on_the_table_plane():
    frame = synthetic_observation().frames[0]
    table = np.asarray(frame.segmentation) == -1
    points = backproject(frame, table)
    assert len(points) == table.sum()
    assert np.allclose(points[:, 2], TABLE_Z, atol=1e-6)


def test_lifting_recovers_centre_and_size_of_a_synthetic_block():
    obs = synthetic_observation(width=320, height=240)
    frame = obs.frames[0]
    body_id = next(i for i, label in obs.segmentation_labels.items() if label == "red block")
    obj = lift(backproject(frame, np.asarray(frame.segmentation) == body_id), "red block", 1.0)
    x, y, half, height = SYNTHETIC_OBJECTS["red block"]
    assert obj.position[0] == pytest.approx(x, abs=0.004)
    assert obj.position[1] == pytest.approx(y, abs=0.004)
    assert obj.top_z == pytest.approx(TABLE_Z + height, abs=0.002)
    assert obj.extent[0] == pytest.approx(2 * half, abs=0.006)


@pytest.mark.parametrize("yaw_deg", [0.0, 17.0, 30.0, -40.0])
def test_footprint_yaw_of_a_rotated_square(yaw_deg):
    rng = np.random.default_rng(0)
    square = rng.uniform(-0.02, 0.02, size=(2000, 2))
    yaw = np.radians(yaw_deg)
    rotation = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
    points = np.column_stack([square @ rotation.T, np.full(len(square), 0.66)])
    assert footprint_yaw(points) == pytest.approx(yaw, abs=np.radians(1.5))


def test_box_of_mask():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    assert box_of_mask(mask) == (3.0, 2.0, 9.0, 5.0)
    assert box_of_mask(np.zeros((3, 3), bool)) is None


def test_oracle_perceptor_conforms_and_finds_both_objects():
    scene = check_perceptor(OraclePerceptor(), expect_labels=True)
    assert scene.source == "oracle"
    assert all(o.score == 1.0 for o in scene.objects)


def test_oracle_needs_images_and_says_so():
    obs = synthetic_observation().model_copy(update={"frames": ()})
    with pytest.raises(ValueError, match="needs camera frames"):
        OraclePerceptor().perceive(obs, [])


def test_oracle_skips_objects_with_too_few_visible_points():
    scene = OraclePerceptor(OraclePerceptor.Config(min_points=10_000)).perceive(synthetic_observation(), [])
    assert scene.objects == ()


def test_oracle_on_rendered_scene_is_within_a_centimetre_of_the_truth(pick_place_env):
    env = pick_place_env
    errors = []
    for seed in range(3):
        env.reset_episode(seed)
        scene = OraclePerceptor().perceive(env.observe(images=True), [])
        assert sorted(scene.labels) == sorted(env.world.bodies)
        for obj in scene.objects:
            truth = env.world.position(obj.label)
            errors.append(np.hypot(*(np.asarray(obj.position[:2]) - truth[:2])))
    assert np.median(errors) < 0.01
