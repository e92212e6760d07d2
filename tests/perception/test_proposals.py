import numpy as np

from fmrobot.perception.proposals import ProposalConfig, propose, table_height, world_points
from fmrobot.testing import SYNTHETIC_OBJECTS, TABLE_Z, synthetic_observation


def test_table_plane_and_objects_of_the_synthetic_scene():
    frame = synthetic_observation(width=320, height=240).frames[0]
    assert table_height(world_points(frame), ProposalConfig()) == np.float32(TABLE_Z) or abs(
        table_height(world_points(frame), ProposalConfig()) - TABLE_Z) < 1e-4
    found = propose(frame)
    assert len(found) == len(SYNTHETIC_OBJECTS)
    for proposal, (label, (x, y, half, h)) in zip(sorted(found, key=lambda p: -p.points[:, 1].mean()),
                                                  sorted(SYNTHETIC_OBJECTS.items(), key=lambda kv: -kv[1][1])):
        assert abs(proposal.points[:, 0].mean() - x) < 0.005 and abs(proposal.points[:, 1].mean() - y) < 0.005


def test_nothing_outside_the_workspace_or_too_tall_is_proposed():
    frame = synthetic_observation(width=320, height=240).frames[0]
    assert propose(frame, ProposalConfig(workspace_x=(0.8, 0.9))) == []
    assert propose(frame, ProposalConfig(max_height=0.01)) == []


def test_rendered_scenes_give_one_proposal_per_object(pick_place_env):
    env = pick_place_env
    ious = []
    for seed in range(4):
        env.reset_episode(seed)
        frame = env.observe(images=True).frames[0]
        found = propose(frame)
        seg = np.asarray(frame.segmentation)
        assert len(found) == len(env.world.bodies), f"seed {seed}: {len(found)} proposals"
        for body in env.world.bodies.values():
            truth = seg == body.body_id
            ious.append(max((truth & p.mask).sum() / (truth | p.mask).sum() for p in found))
    assert min(ious) > 0.6 and np.median(ious) > 0.8
