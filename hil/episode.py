"""One episode as the session records it, step by step, and what it becomes when it ends: an
episode batch for the learner (`hil.batch`), rows for the dataset, a line of `episodes.jsonl`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hil.batch import EpisodeBatch
from robot.executor import StepRecord
from robot.features import IMAGE_PREFIX, STATE_KEY


@dataclass
class EpisodeResult:
    episode: int
    steps: int
    success: bool
    policy_success: bool          # succeeded with no human step
    intervention_steps: int
    takeovers: int
    interrupted_chunks: int
    evaluation: bool
    end: str                      # success | reward_model | time_limit | failure_key | quit | interrupted | fault
    weights_version: int
    env_steps: int                # total after this episode
    wall_s: float
    # the sim's own success judgement of the last state (None on a real arm): with a learned reward
    # (end = reward_model), whether the classifier was right
    task_success: bool | None = None


class Episode:
    """The steps taken so far. Chunk ids and steps come from the executor's records; a chunk is
    "interrupted" when the person took over before its last action was played."""

    def __init__(self, chunk_size: int) -> None:
        self.chunk_size = chunk_size
        self.frames: list[dict[str, np.ndarray]] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.human: list[bool] = []
        self.chunk_index: list[int] = []
        self.chunk_step: list[int] = []
        self.interrupted: set[int] = set()
        self.success = False
        self.terminated = False
        self.end = ""
        self._last: StepRecord | None = None

    def __len__(self) -> int:
        return len(self.actions)

    def add(self, record: StepRecord, frame: dict[str, np.ndarray], reward: float) -> None:
        human = record.source == "override"
        last = self._last
        if human and last is not None and last.source == "policy" and last.chunk_step < self.chunk_size - 1:
            self.interrupted.add(last.chunk_id)      # the takeover cut this chunk short
        policy = record.source == "policy"
        self.frames.append(frame)
        self.actions.append(np.asarray(record.action, np.float32))
        self.rewards.append(float(reward))
        self.human.append(human)
        self.chunk_index.append(record.chunk_id if policy else -1)
        self.chunk_step.append(record.chunk_step if policy else -1)
        self._last = record

    def drop_last(self) -> None:
        """Forget the last step (its next observation could not be read)."""
        for column in (self.frames, self.actions, self.rewards, self.human, self.chunk_index, self.chunk_step):
            column.pop()
        self.terminated = self.success = False

    def batch(self, final: dict[str, np.ndarray], cameras: list[str]) -> EpisodeBatch:
        return EpisodeBatch(np.stack([f[STATE_KEY] for f in self.frames]).astype(np.float32),
                            np.stack(self.actions).astype(np.float32), np.asarray(self.rewards, np.float32),
                            np.asarray(self.human, bool), final[STATE_KEY].astype(np.float32),
                            {c: np.stack([f[IMAGE_PREFIX + c] for f in self.frames]) for c in cameras},
                            {c: final[IMAGE_PREFIX + c] for c in cameras}, self.terminated)

    def dataset_columns(self) -> dict[str, Any]:
        """The per-step flags the session's dataset stores beside each frame."""
        chunk_index = np.asarray(self.chunk_index, np.int64)
        cut = np.isin(chunk_index, sorted(self.interrupted)) & (chunk_index >= 0)
        return {"intervention": np.asarray(self.human, bool), "chunk_index": chunk_index,
                "chunk_step": np.asarray(self.chunk_step, np.int64), "chunk_interrupted": cut}
