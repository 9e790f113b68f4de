"""Inference in a child process (robot/inference_worker.py ProcessInference) under the real-time loop."""

import functools

import numpy as np
import pytest

from export import OnnxChunkPolicy
from robot.executor import ChunkExecutor, ExecutionConfig
from robot.inference_worker import InferenceRequest, ProcessInference
from robot.interface import ACTION_NAMES
from robot.safety import SafetyConfig
from robot.timing import RealClock
from tests.executor_doubles import FirstOrderArm, ScriptedChunkPolicy, failing_policy_factory, ramp_value

FPS = 50.0
DT = 1.0 / FPS


def test_a_gil_holding_policy_in_a_child_process_feeds_the_loop_without_stalling_it():
    runner = ProcessInference(functools.partial(ScriptedChunkPolicy, 20, FPS, busy_s=6 * DT))
    clock = RealClock()
    arm = FirstOrderArm(clock)
    arm.connect()
    ex = ChunkExecutor(arm, runner.spec, ExecutionConfig(mode="receding"), clock=clock, inference=runner,
                       safety=SafetyConfig(max_delta_per_step=1e6, max_start_jump=1e6))
    with ex:
        ex.run(max_steps=30)
    rows = ex.timing.rows()
    sent = rows["sent"][np.isfinite(rows["sent"])]
    assert len(sent) == 30 and np.diff(sent).max() < 5 * DT  # blocked: gaps of >= 6 periods
    latencies = rows["latency"][np.isfinite(rows["latency"])]
    assert len(latencies) >= 2 and latencies.min() >= 6 * DT
    assert arm.received_array()[-1, 0] >= ramp_value(1, 0)  # the arm is following a later chunk


def test_reset_reaches_the_policy_in_the_child_process():
    runner = ProcessInference(functools.partial(ScriptedChunkPolicy, 4, FPS))
    try:
        frame = {"observation.state": np.zeros(6, np.float32)}
        for step in range(2):
            runner.submit(InferenceRequest(frame, step, 0.0, 0))
            assert runner.wait_idle(10.0)
            (result,) = runner.poll(0.0)
        assert result.actions[0, 0] == ramp_value(1, 0)  # second call
        runner.reset_policy()  # the scripted policy restarts its call count
        runner.submit(InferenceRequest(frame, 2, 0.0, 0))
        assert runner.wait_idle(10.0)
        assert runner.poll(0.0)[0].actions[0, 0] == ramp_value(0, 0)
    finally:
        runner.close()


def test_a_policy_that_cannot_be_built_in_the_child_is_a_clear_error():
    with pytest.raises(RuntimeError, match="building the policy in the child process failed: "
                                           "FileNotFoundError: checkpoint.safetensors not found"):
        ProcessInference(failing_policy_factory)


def test_a_history_actor_in_a_child_process_gets_the_executors_window_with_each_request(tmp_path):
    from export.exporter import export_policy
    from testing.sample_policies import make_policy, save_training_checkpoint

    joints = (list(ACTION_NAMES), list(ACTION_NAMES), np.full(6, -100.0), np.full(6, 100.0))
    checkpoint = save_training_checkpoint(make_policy("act", features=joints, seed=1), tmp_path / "train")
    path = export_policy(checkpoint, tmp_path / "actor.onnx", dynamo=False).path
    runner = ProcessInference(functools.partial(OnnxChunkPolicy, str(path)))
    assert runner.spec.history_length == 3   # the child tells the executor how many states the actor reads
    clock = RealClock()
    arm = FirstOrderArm(clock)
    arm.connect()
    ex = ChunkExecutor(arm, runner.spec, ExecutionConfig(mode="receding"), clock=clock, inference=runner,
                       safety=SafetyConfig(max_delta_per_step=1e6, max_start_jump=1e6))
    with ex:
        ex.run(max_steps=12)
    assert ex.safety.counts["inference_error"] == 0   # every request carried its state_history
    assert ex.last_chunk is not None
