"""Takeovers of a running chunk policy (robot.takeover): leader arm, keys, flush, ease-in, hand-back."""

from __future__ import annotations

from typing import Any

import numpy as np

from robot.executor import ChunkExecutor, ExecutionConfig
from robot.inference_worker import InlineInference
from robot.interface import ACTION_NAMES, Teleoperator
from robot.keyboard import KeyboardTeleopConfig, KeyHub
from robot.safety import SafetyConfig
from robot.takeover import TakeoverConfig, TakeoverController
from robot.timing import FakeClock
from tests.executor_doubles import WIDE_LIMITS, FirstOrderArm, ScriptedChunkPolicy

FPS = 50.0
H = 10


class HandLeader(Teleoperator):
    """A leader arm whose pose is wherever the test's 'hand' put it."""

    name = "hand_leader"

    def __init__(self, pose: np.ndarray) -> None:
        self.pose = np.asarray(pose, float).copy()

    @property
    def action_features(self) -> dict[str, Any]:
        return {n: float for n in ACTION_NAMES}

    @property
    def is_connected(self) -> bool:
        return True

    def connect(self, calibrate: bool = True) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def get_action(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(ACTION_NAMES, self.pose)}


def setup(config: TakeoverConfig | None = None, leader_pose: float = 0.0):
    clock = FakeClock()
    arm = FirstOrderArm(clock, tau_s=1e-4)   # follows its target within one period
    arm.connect()
    policy = ScriptedChunkPolicy(H, FPS)     # action j of chunk c = 100 (c + 1) + j on every joint
    leader = HandLeader(np.full(6, leader_pose))
    hub = KeyHub()
    controller = TakeoverController(leader, ACTION_NAMES, FPS, config or TakeoverConfig(leader_threshold=5.0,
                                    ease_steps=4, handback_still_s=0.1), keys=hub.subscribe())
    ex = ChunkExecutor(arm, policy, ExecutionConfig(mode="open_loop"), clock=clock,
                       safety=SafetyConfig(joint_limits=WIDE_LIMITS, max_delta_per_step=1e6, max_start_jump=1e6),
                       inference=InlineInference(policy), intervention=controller)
    controller.on_takeover = ex.flush
    step = ex.step

    def tick():  # one control period: the clock moves on, so the arm moves to its target
        clock.sleep_until(clock.now() + 1.0 / FPS)
        return step()

    ex.step = tick
    return ex, arm, policy, leader, hub, controller


def sent_values(arm: FirstOrderArm) -> list[float]:
    return [float(a[0]) for _, a in arm.received]


def test_a_key_takeover_mid_chunk_flushes_the_queue_within_one_control_period():
    ex, arm, policy, leader, hub, controller = setup()
    for _ in range(3):
        assert ex.step().source == "policy"
    hub.press(" ")
    record = ex.step()                                       # the very next control period
    assert record.source == "override" and controller.active
    assert ex.queue.depth(ex.step_index) == 0
    for _ in range(5):
        ex.step()
    assert sent_values(arm)[:3] == [100.0, 101.0, 102.0]
    assert not any(103.0 <= v <= 109.0 for v in sent_values(arm))  # the rest of the cut chunk never ran


def test_request_takeover_empties_the_queue_at_once():
    ex, arm, policy, leader, hub, controller = setup()
    for _ in range(3):
        ex.step()
    assert ex.queue.depth(ex.step_index) == H - 3
    controller.request_takeover()                            # e.g. from a key thread: no step in between
    assert ex.queue.depth(ex.step_index) == 0


def test_moving_the_leader_past_the_threshold_takes_over():
    ex, arm, policy, leader, hub, controller = setup()
    ex.step()
    leader.pose[2] += 4.0                                    # a nudge under the 5-unit threshold
    assert ex.step().source == "policy"
    leader.pose[2] += 2.0                                    # now 6 units from where it rested
    assert ex.step().source == "override"
    assert controller.last_reason == "leader (leader_moved)"


def test_the_follower_eases_onto_the_leader_without_a_jump():
    ex, arm, policy, leader, hub, controller = setup(leader_pose=40.0)
    controller.request_takeover()
    targets = [float(ex.step().action[0]) for _ in range(6)]
    assert targets == [10.0, 20.0, 30.0, 40.0, 40.0, 40.0]   # linear over ease_steps=4 from the follower's 0
    assert policy.calls == 0


def test_a_resting_leader_hands_back_and_the_policy_starts_a_fresh_chunk():
    ex, arm, policy, leader, hub, controller = setup()
    ex.step()
    leader.pose += 10.0
    assert ex.step().source == "override"
    sources = [ex.step().source for _ in range(8)]           # leader still: 0.1 s = 5 periods at 50 Hz
    handback = sources.index("policy")
    assert all(s == "override" for s in sources[:handback]) and 4 <= handback <= 6
    assert policy.calls == 2                                 # a fresh chunk for the hand-back ...
    np.testing.assert_allclose(policy.frames[-1]["observation.state"], np.full(6, 10.0), atol=1e-3)
    assert sent_values(arm)[-1] == 200.0 + (len(sources) - handback - 1)  # ... played from its start
    assert all(s == "policy" for s in sources[handback:])    # the resting leader does not retrigger


def test_the_takeover_key_toggles_back_to_the_policy():
    ex, arm, policy, leader, hub, controller = setup(TakeoverConfig(trigger="none", handback_still_s=0.0))
    hub.press(" ")
    assert ex.step().source == "override"
    assert ex.step().source == "override"                    # no auto hand-back with handback_still_s=0
    hub.press(" ")
    record = ex.step()
    assert record.source == "policy" and record.new_plan


def test_the_keyboard_teleop_jogs_from_the_follower_pose():
    hub = KeyHub()
    arm = FirstOrderArm(FakeClock(), start=np.array([1.0, 2.0, 3.0, 4.0, 5.0, 50.0]))
    arm.connect()
    teleop = KeyboardTeleopConfig(step=2.0, gripper_step=10.0).build(robot=arm, hub=hub)
    teleop.sync(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 50.0]))
    for key in "qqdh":                                       # joint 1 up twice, joint 3 down, gripper closes
        hub.press(key)
    action = teleop.get_action()
    assert [action[n] for n in ACTION_NAMES] == [5.0, 2.0, 1.0, 4.0, 5.0, 40.0]


def test_terminal_bytes_become_keys_and_arrow_sequences_are_ignored():
    from robot.keyboard import ESC, _parse_keys

    assert _parse_keys(b"o \x1b") == ["o", " ", ESC]
    assert _parse_keys(b"\x1b[A") == []                      # an arrow key is not Esc
