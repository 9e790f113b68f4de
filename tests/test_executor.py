"""ChunkExecutor on a first-order test arm, stepped on a FakeClock with inline inference, so every
arrival and every action is placed exactly (robot/executor.py)."""

import numpy as np
import pytest

from robot.executor import ChunkExecutor, ExecutionConfig, InferenceError
from robot.inference_worker import InlineInference
from robot.safety import BusFaultError, SafetyConfig
from robot.timing import SOURCE_HOLD, SOURCE_OVERRIDE, SOURCE_POLICY, FakeClock
from tests.executor_doubles import FirstOrderArm, ScriptedChunkPolicy, ramp_value

FPS = 50.0
DT = 1.0 / FPS
# Lets the tests see the policy's values unchanged (the safety tests exercise the limits).
PERMISSIVE = SafetyConfig(max_delta_per_step=1e6, max_start_jump=1e6)


def make(mode="receding", chunk_size=8, latency=0.0, safety=PERMISSIVE, chunk_fn=None, intervention=None,
         **config):
    clock = FakeClock()
    arm = FirstOrderArm(clock)
    arm.connect()
    policy = ScriptedChunkPolicy(chunk_size, FPS, chunk_fn=chunk_fn)
    inference = InlineInference(policy, latency)
    ex = ChunkExecutor(arm, policy, ExecutionConfig(mode=mode, **config), safety=safety, clock=clock,
                       inference=inference, intervention=intervention)
    return ex, arm, policy, inference, clock


def received(arm):
    """First joint of every action the arm received (the ramp puts the same value on all joints)."""
    return [float(a[0]) for _, a in arm.received]


@pytest.mark.parametrize("latency, dropped", [(0.005, 1), (0.031, 2), (0.05, 3), (0.07, 4)])
def test_latency_compensation_drops_exactly_ceil_latency_times_fps_actions(latency, dropped):
    ex, arm, *_ = make("receding", latency=latency)
    ex.run(max_steps=dropped + 1)
    # Steps before the chunk lands hold the start pose; the first action played is index ceil(L * fps).
    assert received(arm) == [0.0] * dropped + [ramp_value(0, dropped)]
    row = ex.timing.rows()[dropped]
    assert row["stale"] == dropped and row["latency"] == pytest.approx(latency)


def test_without_latency_compensation_a_late_chunk_starts_from_its_first_action():
    ex, arm, *_ = make("receding", latency=0.05, latency_compensation=False)
    ex.run(max_steps=4)
    assert received(arm) == [0.0, 0.0, 0.0, ramp_value(0, 0)]


def test_open_loop_plays_all_h_actions_then_holds_while_replanning():
    ex, arm, policy, inference, _ = make("open_loop", chunk_size=4, latency=0.05)
    ex.run(max_steps=14)
    # chunk 0 asked at step 0 lands at step 3 (0.05 s): plays 100..103; asked again at step 7
    # from the observation after the chunk, lands at step 10: plays 200..203.
    assert received(arm) == [0, 0, 0, 100, 101, 102, 103, 103, 103, 103, 200, 201, 202, 203]
    assert [r.obs_step for r in inference.submitted] == [0, 7]


def test_receding_requests_the_next_chunk_early_enough_that_the_queue_never_runs_dry():
    ex, arm, policy, inference, _ = make("receding", chunk_size=10, latency=0.05, n_receding=5)
    ex.run(max_steps=22)
    # Latency 0.05 s = 3 steps (+1 margin): each request goes out 4 steps before the switch.
    assert [r.obs_step for r in inference.submitted] == [0, 4, 9, 14, 19]
    sources = ex.timing.rows()["source"]
    assert list(sources[:3]) == [SOURCE_HOLD] * 3 and (sources[3:] == SOURCE_POLICY).all()
    # The chunk asked at step 4 takes over at step 8 with its action for step 8 (index 4).
    assert received(arm)[3:10] == [103, 104, 105, 106, 107, 204, 205]


def test_temporal_ensemble_asks_for_a_chunk_every_step_it_can_and_averages_them():
    ex, arm, policy, inference, _ = make("temporal_ensemble", chunk_size=4, latency=0.0, ensemble_m=0.0)
    ex.run(max_steps=3)
    assert [r.obs_step for r in inference.submitted] == [0, 1, 2]
    # m = 0: plain mean. Step 1: chunk 0 index 1 and chunk 1 index 0 -> (101 + 200) / 2.
    assert received(arm) == pytest.approx([100.0, 150.5, (102 + 201 + 300) / 3])


def test_the_policy_gets_the_policy_frame_of_the_observation_the_loop_read():
    ex, arm, policy, inference, clock = make("open_loop", chunk_size=4)
    arm.position[:] = np.arange(6)
    arm.target[:] = np.arange(6)
    ex.step()
    np.testing.assert_allclose(policy.frames[0]["observation.state"], np.arange(6))
    assert inference.submitted[0].obs_step == 0 and inference.submitted[0].obs_time == 0.0


def test_watchdog_fires_once_when_the_policy_stalls_and_the_arm_holds():
    # First chunk immediately, then the policy never answers in time (10 s).
    ex, arm, policy, inference, _ = make("open_loop", chunk_size=4, watchdog_s=0.21,
                                         latency=lambda req: 0.0 if req.obs_step == 0 else 10.0)
    ex.run(max_steps=40)
    assert received(arm)[3:] == [103.0] * 37  # last target held
    events = ex.safety.events_of("watchdog")
    # Last planned action at step 3 (t = 0.06 s); 0.21 s later is passed at step 14 (t = 0.28 s).
    assert [e.step for e in events] == [14]


def test_a_failing_read_holds_in_the_same_period_then_torque_goes_off_with_a_clear_error():
    ex, arm, *_ = make("open_loop", chunk_size=8)
    for _ in range(5):
        ex.step()
    arm.fail_reads_from_call = arm.read_calls + 1
    ex.step()  # first faulty period: holds at once
    ex.step()  # second: holds
    assert received(arm)[-3:] == [104.0, 104.0, 104.0]
    assert ex.timing.rows()["source"][-2:].tolist() == [SOURCE_HOLD, SOURCE_HOLD]
    with pytest.raises(BusFaultError) as err:
        ex.step()  # third faulty period in a row (max_fault_periods = 3)
    message = str(err.value)
    assert "get_observation" in message and "3 consecutive" in message
    assert "There is no status packet" in message and "torque disabled" in message
    assert not arm.torque_enabled


def test_flush_empties_the_queue_at_the_next_step_and_discards_the_chunk_in_flight():
    ex, arm, policy, inference, _ = make("receding", chunk_size=8, latency=0.05, n_receding=4)
    ex.run(max_steps=5)  # chunk 0 plays from step 3; chunk 1 was asked at step 3 (lands at step 6)
    assert received(arm)[-1] == 104.0 and inference.busy
    ex.flush()
    ex.run(max_steps=5)  # steps 5..9
    assert received(arm)[5:] == [104.0, 104.0, 104.0, 104.0, ramp_value(2, 3)]
    assert ex.discarded_chunks == 1
    assert [r.obs_step for r in inference.submitted][:3] == [0, 3, 6]  # the discarded one, then a fresh ask


def test_an_override_takes_over_at_once_and_the_policy_resumes_when_it_stops():
    human = {"on": False}
    override = np.full(6, -7.0)
    ex, arm, policy, inference, _ = make("receding", chunk_size=8, latency=0.0,
                                         intervention=lambda obs: override if human["on"] else None)
    ex.run(max_steps=3)
    human["on"] = True
    ex.run(max_steps=3)
    human["on"] = False
    ex.run(max_steps=1)
    assert received(arm)[3:6] == [-7.0] * 3
    assert ex.timing.rows()["source"][3:6].tolist() == [SOURCE_OVERRIDE] * 3
    assert received(arm)[6] == ramp_value(1, 0)  # a fresh chunk from the post-takeover observation
    assert inference.submitted[-1].obs_step == 6


def test_missed_deadlines_are_counted_and_skipped_not_burst():
    clock_ref = {}

    def stall_once(obs):
        if clock_ref["ex"].step_index == 3:
            clock_ref["clock"].advance(2.5 * DT)  # this step overruns by 1.5 periods
        return None

    ex, arm, policy, inference, clock = make("receding", intervention=stall_once)
    clock_ref.update(ex=ex, clock=clock)
    result = ex.run(max_steps=6)
    rows = ex.timing.rows()
    assert rows["step"].tolist() == [0, 1, 2, 3, 6, 7]
    assert rows["missed"].tolist() == [0, 0, 0, 0, 2, 0]
    assert rows["scheduled"] == pytest.approx(rows["step"] * DT)
    assert result.missed == 2


def test_ctrl_c_in_the_loop_holds_and_disables_torque_when_configured():
    def interrupt_at_step_4(obs):
        if ex.step_index == 4:
            raise KeyboardInterrupt
        return None

    safety = SafetyConfig(max_delta_per_step=1e6, max_start_jump=1e6, torque_off_on_interrupt=True)
    ex, arm, *_ = make("open_loop", chunk_size=8, safety=safety, intervention=interrupt_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        ex.run(max_steps=10)
    assert received(arm)[-2:] == [103.0, 103.0]  # the hold sent on interrupt
    assert not arm.torque_enabled
    assert [e.kind for e in ex.safety.events][-2:] == ["interrupt", "torque_off"]


def test_a_policy_error_holds_the_arm_and_is_raised():
    def chunk_fn(c, state):
        if c == 1:
            raise RuntimeError("CUDA out of memory")
        return np.zeros((4, 6)) + 5.0

    ex, arm, *_ = make("open_loop", chunk_size=4, chunk_fn=chunk_fn)
    ex.run(max_steps=4)
    with pytest.raises(InferenceError, match="CUDA out of memory"):
        ex.step()
    assert received(arm)[-1] == 5.0


def test_a_policy_for_other_joints_is_refused():
    policy = ScriptedChunkPolicy(4, FPS)
    policy.action_names = ("a.pos", "b.pos")
    with pytest.raises(ValueError, match="do not match the robot"):
        ChunkExecutor(FirstOrderArm(FakeClock()), policy, inference=InlineInference(policy))


def test_running_at_another_rate_than_the_policy_is_refused():
    policy = ScriptedChunkPolicy(4, FPS)
    with pytest.raises(ValueError, match="trained at 50.0 fps"):
        ChunkExecutor(FirstOrderArm(FakeClock()), policy, ExecutionConfig(fps=30), inference=InlineInference(policy))


def test_every_accepted_chunk_is_handed_to_the_on_chunk_hook_with_its_admission():
    seen = []
    ex, arm, policy, inference, _ = make("receding", chunk_size=10, latency=0.05, n_receding=5)
    ex.on_chunk = lambda chunk, admission: seen.append((chunk.obs_step, chunk.arrival_step, admission.stale))
    ex.run(max_steps=10)
    assert seen == [(0, 3, 3), (4, 7, 3)]
    assert ex.last_chunk.obs_step == 4


def test_configs_parse_from_the_command_line_like_lerobot_configs():
    import draccus

    cfg = draccus.parse(ExecutionConfig, args=["--mode=temporal_ensemble", "--ensemble_m=0.02", "--blend_steps=3"])
    assert (cfg.mode, cfg.ensemble_m, cfg.blend_steps) == ("temporal_ensemble", 0.02, 3)
    safety = draccus.parse(SafetyConfig, args=['--joint_limits={"gripper.pos": [0, 100]}', "--max_delta_per_step=2"])
    assert safety.joint_limits == {"gripper.pos": (0.0, 100.0)} and safety.max_delta_per_step == 2.0


def test_a_chunk_of_the_wrong_shape_holds_the_arm_and_is_raised_as_a_policy_error():
    ex, arm, *_ = make("open_loop", chunk_size=4, chunk_fn=lambda c, state: np.zeros((3, 6)))
    with pytest.raises(InferenceError, match=r"shape \(3, 6\); expected \(4, 6\)"):
        ex.step()
    assert received(arm) == [0.0]  # held the start pose


def test_reset_between_episodes_empties_the_queue_drops_the_chunk_in_flight_and_resets_the_policy():
    ex, arm, policy, inference, _ = make("receding", chunk_size=8, latency=0.05, n_receding=4)
    ex.run(max_steps=5)
    assert inference.busy and ex.queue.depth(5) > 0
    ex.reset()
    assert policy.resets == 1 and not inference.busy and ex.queue.depth(5) == 0
    ex.run(max_steps=1)
    assert ex.timing.rows()["source"][-1] == SOURCE_HOLD and inference.submitted[-1].obs_step == 5
