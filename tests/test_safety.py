"""The safety layer (robot/safety.py): what reaches `send_action`, checked on what the arm received."""

import numpy as np
import pytest

from robot.executor import ChunkExecutor, ExecutionConfig
from robot.inference_worker import InlineInference
from robot.interface import ACTION_NAMES
from robot.safety import BusFaultError, SafetyConfig, SafetyLayer
from robot.timing import FakeClock
from tests.executor_doubles import FirstOrderArm, ScriptedChunkPolicy

LIMITS = {n: (-90.0, 90.0) for n in ACTION_NAMES[:5]} | {"gripper.pos": (0.0, 100.0)}


def layer(**config):
    clock = FakeClock()
    arm = FirstOrderArm(clock, joint_limits=LIMITS, start=np.full(6, 10.0))
    arm.connect()
    cfg = SafetyConfig(**({"max_delta_per_step": 1e6, "max_start_jump": 1e6} | config))
    return SafetyLayer(arm, ACTION_NAMES, cfg, clock=clock.now), arm


def send(safety, target, step, present=None, new_plan=False):
    present = np.full(6, 10.0) if present is None else present
    safe, held = safety.filter(None if target is None else np.asarray(target, float), present, step, new_plan)
    safety.send(safe, step)
    return safe, held


def test_unsafe_chunks_never_reach_send_action():
    """NaN, inf, out-of-limit and far-away targets from a real executor run: the arm only ever
    receives finite, in-limit targets that move at most max_delta per step."""
    nan, inf = np.nan, np.inf
    rows = [[12, 14, nan, inf, 500, -500, 16, 18], [80, 80, 80, 80, 80, 80, 80, 80]]

    def chunk_fn(c, state):
        values = np.asarray(rows[min(c, 1)], dtype=np.float64)
        chunk = np.repeat(values[:, None], 6, axis=1)
        chunk[1, 2] = nan  # one bad joint spoils the whole action
        return chunk

    clock = FakeClock()
    arm = FirstOrderArm(clock, joint_limits=LIMITS, start=np.full(6, 10.0))
    arm.connect()
    policy = ScriptedChunkPolicy(8, 50.0, chunk_fn=chunk_fn)
    safety = SafetyConfig(max_delta_per_step=5.0, max_start_jump=15.0, approach_steps=5)
    ex = ChunkExecutor(arm, policy, ExecutionConfig(mode="open_loop"), safety=safety, clock=clock,
                       inference=InlineInference(policy))
    ex.run(max_steps=30)
    got = arm.received_array()
    lo = np.array([LIMITS[n][0] for n in ACTION_NAMES])
    hi = np.array([LIMITS[n][1] for n in ACTION_NAMES])
    assert np.isfinite(got).all()
    assert (got >= lo).all() and (got <= hi).all()
    steps = np.abs(np.diff(np.vstack([np.full(6, 10.0), got]), axis=0))
    assert steps.max() <= 5.0 + 1e-9
    kinds = set(ex.safety.counts)
    assert {"non_finite", "clamped", "rate_limited", "start_jump"} <= kinds
    assert got[-1] == pytest.approx(np.full(6, 80.0))  # and it still gets where the policy wants


def test_non_finite_action_holds_the_last_target():
    safety, arm = layer()
    send(safety, np.full(6, 20.0), 0)
    safe, held = send(safety, [20, 20, np.nan, 20, 20, 20], 1)
    assert held and safe.tolist() == [20.0] * 6
    send(safety, [np.inf] * 6, 2)
    assert arm.received_array()[1:].tolist() == [[20.0] * 6] * 2
    assert [e.kind for e in safety.events] == ["non_finite", "non_finite"]
    assert safety.events[0].details["joints"] == ["elbow_flex.pos"]


def test_targets_are_clamped_to_the_joint_limits():
    safety, arm = layer()
    safe, _ = send(safety, [95, -95, 0, 0, 0, 120], 0)
    assert safe.tolist() == [90, -90, 0, 0, 0, 100]
    event = safety.events_of("clamped")[0]
    assert event.details["joints"] == ["shoulder_pan.pos", "shoulder_lift.pos", "gripper.pos"]


def test_rate_limit_caps_every_step_per_joint():
    safety, arm = layer(max_delta_per_step=2.0, max_delta_per_joint={"gripper.pos": 0.5})
    for step in range(6):
        send(safety, np.full(6, 60.0), step)
    got = np.vstack([np.full(6, 10.0), arm.received_array()])
    np.testing.assert_allclose(np.diff(got, axis=0)[:, :5], 2.0)
    np.testing.assert_allclose(np.diff(got, axis=0)[:, 5], 0.5)


def test_a_new_plan_far_from_the_present_position_is_eased_in_linearly():
    safety, arm = layer(max_start_jump=15.0, approach_steps=4)
    present = np.full(6, 10.0)
    sent = [send(safety, np.full(6, 50.0), s, present=present, new_plan=(s == 0))[0][0] for s in range(5)]
    # Offset 40 shrinks to 0 over 4 steps: 10 + 40 * (1/4, 2/4, 3/4, 1).
    assert sent == pytest.approx([20.0, 30.0, 40.0, 50.0, 50.0])
    (event,) = safety.events_of("start_jump")
    assert event.details["gap"] == pytest.approx(40.0) and event.step == 0


def test_a_new_plan_close_to_the_present_position_is_not_eased():
    safety, _ = layer(max_start_jump=15.0)
    safe, _ = send(safety, np.full(6, 20.0), 0, new_plan=True)
    assert safe.tolist() == [20.0] * 6 and not safety.events_of("start_jump")


def test_nothing_to_hold_before_any_position_is_known():
    safety, _ = layer()
    assert safety.filter(None, None, 0) == (None, True)


def test_failing_writes_are_retried_then_torque_goes_off_with_a_clear_error():
    safety, arm = layer(write_retries=1, max_fault_periods=2)
    arm.fail_writes = True
    assert safety.send(np.full(6, 10.0), 0) is False
    safety.end_step(0)
    with pytest.raises(BusFaultError, match=r"send_action\(\) failed in 2 consecutive.*Port is in use"):
        safety.send(np.full(6, 10.0), 1)
    assert len(safety.events_of("bus_write_error")) == 4  # 2 periods x (1 try + 1 retry)
    assert not arm.torque_enabled


def test_a_good_period_resets_the_fault_count():
    safety, arm = layer(read_retries=0, max_fault_periods=2)
    arm.fail_reads_from_call = 1
    assert safety.read_observation(0) is None
    safety.end_step(0)
    arm.fail_reads_from_call = None
    assert safety.read_observation(1) is not None
    safety.end_step(1)
    arm.fail_reads_from_call = arm.read_calls + 1
    assert safety.read_observation(2) is None  # one fault again, not the second in a row


class NoTorqueHookArm(FirstOrderArm):
    torque_off = None  # a robot without the hook: the layer falls back to disconnect()

    def disconnect(self):
        raise ConnectionError("There is no status packet!")


def test_torque_off_falls_back_to_disconnect_and_says_so_when_that_fails_too():
    clock = FakeClock()
    arm = NoTorqueHookArm(clock, joint_limits=LIMITS)
    arm.connect()
    safety = SafetyLayer(arm, ACTION_NAMES, SafetyConfig(read_retries=0, max_fault_periods=1), clock=clock.now)
    arm.fail_reads_from_call = 1
    with pytest.raises(BusFaultError, match=r"robot.disconnect\(\) was not confirmed.*cut the servo power"):
        safety.read_observation(0)


def test_missing_joint_limits_are_a_clear_error():
    arm = FirstOrderArm(FakeClock(), joint_limits={"gripper.pos": (0.0, 100.0)})
    with pytest.raises(ValueError, match="no joint limits for .*shoulder_pan.pos.*calibration.limits.joint_limits"):
        SafetyLayer(arm, ACTION_NAMES, SafetyConfig())


def test_config_limits_win_over_the_robots_own():
    arm = FirstOrderArm(FakeClock(), joint_limits=LIMITS)
    safety = SafetyLayer(arm, ACTION_NAMES, SafetyConfig(joint_limits={n: (-1.0, 1.0) for n in ACTION_NAMES}))
    assert safety.upper.tolist() == [1.0] * 6
