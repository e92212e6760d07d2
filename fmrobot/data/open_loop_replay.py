"""Re-run a recorded episode in simulation, open loop, and check that it ends the way it did.

The episode's seed rebuilds the same scene; the recorded actions are applied in order
(closing frames are not actions and are skipped); the robot must end where it ended
then, and after the same settling the task's predicates must come out the same. A
mismatch means the simulation, the task or the recording changed since the dataset was
written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fmrobot.data.features import robot_state_row
from fmrobot.data.recording import EpisodeRecord
from fmrobot.types import Action


@dataclass(frozen=True)
class ReplayOutcome:
    seed: int
    recorded_success: bool
    replayed_success: bool
    predicates_match: bool
    instruction_match: bool
    end_position_error: float  # metres between the recorded and the replayed final end-effector position
    actions: int

    @property
    def matches(self) -> bool:
        return (self.recorded_success == self.replayed_success and self.predicates_match
                and self.instruction_match and self.end_position_error < 0.005)

    def describe(self) -> str:
        verdict = "same ending" if self.matches else "DIFFERENT ending"
        return (f"seed {self.seed}: {verdict} (recorded success {self.recorded_success}, replayed "
                f"{self.replayed_success}; predicates {'match' if self.predicates_match else 'differ'}; "
                f"instruction {'matches' if self.instruction_match else 'differs'}; end effector "
                f"{self.end_position_error * 1000:.2f} mm from its recorded end; {self.actions} actions)")


def replay(env, record: EpisodeRecord, settle_seconds: float = 1.0) -> ReplayOutcome:
    episode, _ = env.reset_episode(record.seed)
    applied = record.action[~record.done]
    obs = None
    for row in applied:
        obs = env.apply(Action(ee_position=tuple(float(v) for v in row[:3]),
                               ee_orientation=tuple(float(v) for v in row[3:7]), gripper=float(row[7])))
    if obs is None:
        obs = env.observe()
    error = float(np.linalg.norm(robot_state_row(obs)[:3] - record.final_state[:3]))
    env.settle(settle_seconds)
    predicates = {k: bool(v) for k, v in env.evaluate().items()}
    return ReplayOutcome(
        seed=record.seed, recorded_success=record.success, replayed_success=predicates["success"],
        predicates_match=predicates == record.predicates, instruction_match=episode.instruction == record.instruction,
        end_position_error=error, actions=len(applied),
    )
