"""The executor owns the observation history: a policy that reads one gets the states of consecutive control
steps, not of its calls."""

from __future__ import annotations

import numpy as np

from robot.executor import ChunkExecutor, ExecutionConfig
from robot.inference_worker import InlineInference
from robot.safety import SafetyConfig
from robot.timing import FakeClock
from tests.executor_doubles import FirstOrderArm

PERMISSIVE = SafetyConfig(max_delta_per_step=1e6, max_start_jump=1e6)


class HistoryRecordingPolicy:
    """Ramps every joint upward and records (request state, state history) for each chunk it is asked for."""

    chunk_size = 4
    fps = 10.0
    history_length = 3

    def __init__(self, action_names):
        self.action_names = tuple(action_names)
        self.seen: list[tuple[np.ndarray, np.ndarray]] = []

    def predict_chunk(self, observation):
        state = observation["observation.state"]
        self.seen.append((state.copy(), observation["state_history"].copy()))
        return (state[None, :] + 10.0 * np.arange(1, self.chunk_size + 1)[:, None]).astype(np.float32)

    def reset(self):
        pass


def _run(steps: int, executor: ChunkExecutor, clock: FakeClock, log: list[np.ndarray]) -> None:
    for _ in range(steps):
        executor.step()
        clock.advance(0.1)


def _make():
    clock = FakeClock()
    arm = FirstOrderArm(clock)
    arm.connect()
    policy = HistoryRecordingPolicy(arm.action_features)
    states: list[np.ndarray] = []
    executor = ChunkExecutor(
        arm, policy, ExecutionConfig(mode="open_loop"), safety=PERMISSIVE, clock=clock,
        inference=InlineInference(policy),
        on_step=lambda rec: states.append(np.array([rec.observation[n] for n in arm.observation_features])),
    )
    return executor, policy, clock, states


def test_state_history_holds_the_previous_control_steps_oldest_first():
    executor, policy, clock, states = _make()
    _run(10, executor, clock, states)
    assert len(policy.seen) >= 2
    state0, hist0 = policy.seen[0]
    # the first request (step 0) has no past: the history repeats the first state
    np.testing.assert_allclose(hist0, np.stack([state0, state0]))
    # a later request at step k carries the states read at steps k-2 and k-1
    state_k, hist_k = policy.seen[1]
    k = next(i for i, s in enumerate(states) if np.allclose(s, state_k))
    assert k >= 4  # open loop: the second chunk is asked for after the first one was played
    np.testing.assert_allclose(hist_k, np.stack([states[k - 2], states[k - 1]]))
    assert not np.allclose(hist_k[0], hist_k[1])  # the arm moved: consecutive steps differ


def test_reset_starts_a_fresh_history():
    executor, policy, clock, states = _make()
    _run(6, executor, clock, states)
    executor.reset()
    _run(1, executor, clock, states)
    state, hist = policy.seen[-1]
    np.testing.assert_allclose(hist, np.stack([state, state]))
