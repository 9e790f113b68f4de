"""The chunk executor feeding a ChunkView (robot.viz.attach_view) on the simulated SO-101; the
recordings are read back through Rerun's own reader."""

import numpy as np
import pytest

from robot.executor import ChunkExecutor, ExecutionConfig, InferenceError
from robot.inference_worker import InlineInference
from robot.interface import ACTION_NAMES, MOTOR_NAMES
from robot.safety import BusFaultError, SafetyConfig
from robot.sim import SimSO101Config
from robot.timing import FakeClock
from robot.viz import ChunkView, VizConfig, attach_view
from robot.viz.readback import read_entity_rows, read_text_logs
from tests.executor_doubles import FirstOrderArm, ScriptedChunkPolicy, reach_chunk

FPS = 50
H = 10


def sim_arm(**kwargs):
    robot = SimSO101Config(task="lift", fps=FPS, seed=0, **kwargs).build()
    robot.connect()
    limits = {n: (float(lo), float(hi)) for n, lo, hi in zip(ACTION_NAMES, robot.action_low, robot.action_high)}
    return robot, limits


def executor(robot, limits, policy, latency_s=0.03, mode="receding", **safety):
    return ChunkExecutor(robot, policy, ExecutionConfig(mode=mode, watchdog_s=0.5), clock=FakeClock(),
                         safety=SafetyConfig(joint_limits=limits, **safety),
                         inference=InlineInference(policy, latency_s=latency_s))


def view_of(robot, tmp_path, **viz):
    path = tmp_path / "run.rrd"
    return ChunkView.for_robot(VizConfig(rrd=path, **viz), robot, fps=FPS, chunk_size=H), path


def test_the_on_step_hook_sees_every_step_with_its_observation_and_timing_even_when_the_policy_raises():
    arm = FirstOrderArm(FakeClock())
    arm.connect()

    def chunk_fn(c, state):
        if c == 1:
            raise RuntimeError("CUDA out of memory")
        return np.zeros((4, 6))

    policy = ScriptedChunkPolicy(4, FPS, chunk_fn=chunk_fn)
    ex = ChunkExecutor(arm, policy, ExecutionConfig(mode="open_loop"), clock=arm.clock,
                       inference=InlineInference(policy))
    seen = []
    ex.on_step = seen.append
    with pytest.raises(InferenceError):
        for _ in range(10):
            ex.step()
    assert [r.step for r in seen] == list(range(len(seen)))
    assert seen[-1].events[-1].kind == "inference_error"  # the failing step was seen before the raise
    assert all(set(ACTION_NAMES) <= set(r.observation) for r in seen)
    assert [int(r.timing["step"]) for r in seen] == [r.step for r in seen]


def test_a_run_on_the_sim_arm_records_the_arm_every_joint_the_timing_and_one_path_per_chunk(tmp_path):
    robot, limits = sim_arm()
    goal = robot.joint_positions() + np.array([20.0, -15.0, 15.0, -10.0, 0.0, 0.0])
    policy = ScriptedChunkPolicy(H, FPS, chunk_fn=reach_chunk(goal, H, step=1.0))
    ex = executor(robot, limits, policy, max_delta_per_step=2.0)
    chunks_handed_over = []
    ex.on_chunk = lambda chunk, admission: chunks_handed_over.append(chunk.obs_step)  # kept by the view
    view, path = view_of(robot, tmp_path)
    steps = 100
    with view, attach_view(view, ex):
        ex.run(max_steps=steps)
    assert view.dropped == 0
    rows = read_entity_rows(path)
    assert len(chunks_handed_over) >= 15
    assert sorted(p for p in rows if p.startswith("/world/chunks/")) == [
        f"/world/chunks/c{c:06d}" for c in range(len(chunks_handed_over))]
    for body in ("base", "shoulder", "upper_arm", "lower_arm", "wrist", "gripper", "moving_jaw"):
        assert rows[f"/world/arm/{body}"] == steps
    for motor in MOTOR_NAMES:
        assert rows[f"/joints/{motor}/measured"] == steps
        assert rows[f"/joints/{motor}/sent"] == steps
        assert rows[f"/joints/{motor}/plan/even"] + rows[f"/joints/{motor}/plan/odd"] == H * len(chunks_handed_over)
    for series in ("/timing/jitter_ms", "/timing/bus_read_ms", "/timing/bus_write_ms", "/queue/depth",
                   "/world/ee/measured", "/world/cube"):
        assert rows[series] == steps, series
    assert rows["/timing/inference_latency_ms"] == len(chunks_handed_over)
    assert rows["/world/ee/executed"] >= 1


def test_safety_events_takeover_and_hand_back_are_logged_at_the_step_that_caused_them(tmp_path):
    robot, limits = sim_arm()
    start = robot.joint_positions()
    far = start + np.array([30.0, 0, 0, 0, 0, 0])  # the first chunk jumps 30 deg: eased in (start_jump)
    policy = ScriptedChunkPolicy(H, FPS, chunk_fn=lambda c, s: np.repeat(far[None], H, 0))
    # The first chunk takes 0.8 s with a 0.5 s watchdog: the arm holds and the watchdog fires before it
    # lands at step 40; then 40 ms per chunk, played whole (open loop), so one is mid-way at the takeover.
    ex = executor(robot, limits, policy, latency_s=lambda request: 0.8 if request.obs_step == 0 else 0.04,
                  mode="open_loop", max_start_jump=15.0, max_delta_per_step=1.0)
    view, path = view_of(robot, tmp_path)
    human = start.copy()
    with view, attach_view(view, ex):
        for k in range(80):
            ex.clock.sleep_until(k / FPS)
            ex.step(scheduled=k / FPS, override=human if 55 <= k < 65 else None)
    logs = read_text_logs(path)
    caused = {(e.kind, e.step) for e in ex.safety.events}
    assert {kind for kind, _ in caused} >= {"watchdog", "start_jump", "rate_limited"}
    logged = {(entity.split("/")[-1], step) for entity, entries in logs.items() for step, _ in entries}
    assert caused <= logged
    assert [s for s, _ in logs["/events/takeover"]] == [55]
    assert [s for s, _ in logs["/events/hand_back"]] == [65]
    assert 55 in [s for s, _ in logs.get("/events/chunk_cut_short", [])]


def test_camera_frames_are_logged_every_nth_step(tmp_path):
    robot, limits = sim_arm(cameras=["front"], image_height=24, image_width=32)
    policy = ScriptedChunkPolicy(H, FPS, chunk_fn=reach_chunk(robot.joint_positions(), H, step=1.0))
    ex = executor(robot, limits, policy)
    view, path = view_of(robot, tmp_path, image_every=4)
    with view, attach_view(view, ex):
        ex.run(max_steps=12)
    assert read_entity_rows(path)["/camera/front"] == 3  # steps 0, 4, 8


def test_the_events_of_a_step_that_ends_the_run_are_logged_when_the_view_detaches(tmp_path):
    arm = FirstOrderArm(FakeClock())  # no arm model for this robot: joints and events only
    arm.connect()
    arm.fail_reads_from_call = 5
    policy = ScriptedChunkPolicy(4, FPS, chunk_fn=lambda c, s: np.zeros((4, 6)))
    ex = ChunkExecutor(arm, policy, ExecutionConfig(mode="receding"), clock=arm.clock,
                       inference=InlineInference(policy))
    view, path = view_of(arm, tmp_path)
    with view, attach_view(view, ex):
        with pytest.raises(BusFaultError):
            ex.run(max_steps=50)
    logs = read_text_logs(path)
    torque_off = ex.safety.events_of("torque_off")[0]
    assert [s for s, _ in logs["/events/torque_off"]] == [torque_off.step]
    assert len(logs["/events/bus_read_error"]) == ex.safety.counts["bus_read_error"]
    rows = read_entity_rows(path)
    assert not any(p.startswith("/world/arm/") for p in rows)
