"""Training samples from a demonstration dataset: observation history in, action chunk out.

Every frame of every successful skill call is a sample. Its input is the observation
features of the last `obs_horizon` frames of that call (the first frame repeated at the
start) and the skill; its target is the next `horizon` encoded actions. Past the end of
the call the chunk continues with the closing frame (hold still, done), which is how a
policy learns to say it has finished.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fmrobot.data.features import (
    ACTION_DIM,
    OBSERVATION_DIM,
    SkillContext,
    encode_action,
    observation_features,
)
from fmrobot.data.dataset import DemoDataset


@dataclass
class SampleSet:
    observations: np.ndarray  # (N, obs_horizon, OBSERVATION_DIM)
    skills: np.ndarray  # (N,) index into `skill_names`
    actions: np.ndarray  # (N, horizon, ACTION_DIM)
    skill_names: list[str]
    episodes: int  # how many demonstrations the samples come from
    max_call_frames: dict[str, int]  # the longest demonstrated call of each skill, in frames

    def __len__(self) -> int:
        return len(self.skills)


def build_samples(dataset: DemoDataset, horizon: int, obs_horizon: int, max_episodes: int | None = None,
                  skills: list[str] | None = None) -> SampleSet:
    """Samples from the dataset's first `max_episodes` successful episodes (all when None)."""
    names = list(skills or dataset.skills)
    obs_rows, skill_rows, action_rows = [], [], []
    longest: dict[str, int] = {}
    used = 0
    for index in range(dataset.num_episodes):
        if max_episodes is not None and used >= max_episodes:
            break
        if not dataset.success[index]:
            continue
        used += 1
        episode = dataset.episode(index)
        for call in np.unique(episode.call_index):
            rows = np.flatnonzero(episode.call_index == call)
            skill = episode.skills[int(episode.skill_index[rows[0]])]
            if skill not in names or not episode.done[rows[-1]]:
                continue  # a skill this policy does not learn, or a call that did not finish
            context = SkillContext.from_array(skill, episode.context[rows[0]])
            features = np.stack([observation_features(context, episode.state[r]) for r in rows])
            encoded = np.stack([encode_action(context, episode.action[r], bool(episode.done[r])) for r in rows])
            longest[skill] = max(longest.get(skill, 0), len(rows))
            n = len(rows)
            for t in range(n):
                history = [max(t - k, 0) for k in range(obs_horizon - 1, -1, -1)]
                chunk = [min(t + k, n - 1) for k in range(horizon)]
                obs_rows.append(features[history])
                action_rows.append(encoded[chunk])
                skill_rows.append(names.index(skill))
    if not skill_rows:
        raise ValueError(f"{dataset.path} holds no successful skill calls of {names}")
    return SampleSet(
        observations=np.asarray(obs_rows, dtype=np.float32).reshape(-1, obs_horizon, OBSERVATION_DIM),
        skills=np.asarray(skill_rows, dtype=np.int64),
        actions=np.asarray(action_rows, dtype=np.float32).reshape(-1, horizon, ACTION_DIM),
        skill_names=names, episodes=used, max_call_frames=longest,
    )
