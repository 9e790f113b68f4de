"""A policy whose actions are NaN: the arm holds, and the run stops with a clear error after N steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot.executor import ChunkExecutor, ExecutionConfig, NonFiniteActionsError
from robot.inference_worker import InlineInference
from robot.interface import ACTION_NAMES
from robot.safety import SafetyConfig
from robot.timing import FakeClock
from tests.executor_doubles import WIDE_LIMITS, FirstOrderArm, ScriptedChunkPolicy

torch.set_num_threads(1)


def executor(policy, limit: int) -> tuple[ChunkExecutor, FirstOrderArm]:
    clock = FakeClock()
    arm = FirstOrderArm(clock, joint_limits=WIDE_LIMITS)
    arm.connect()
    return ChunkExecutor(arm, policy, ExecutionConfig(mode="open_loop", max_non_finite_steps=limit), clock=clock,
                         safety=SafetyConfig(joint_limits=WIDE_LIMITS), inference=InlineInference(policy)), arm


def test_a_nan_policy_is_held_then_stopped_after_n_steps_in_a_row():
    policy = ScriptedChunkPolicy(8, 50.0, chunk_fn=lambda c, s: np.full((8, len(ACTION_NAMES)), np.nan))
    ex, arm = executor(policy, limit=6)
    with pytest.raises(NonFiniteActionsError, match="6 steps in a row"):
        ex.run(max_steps=100)
    assert ex.step_index == 6 and ex.safety.counts["non_finite"] == 6
    assert len(arm.received) == 6 and all(np.isfinite(a).all() for _, a in arm.received)   # held, never NaN


def test_an_occasional_nan_action_is_held_without_stopping_the_run():
    def one_bad_action_per_chunk(c: int, state: np.ndarray) -> np.ndarray:
        chunk = np.zeros((8, len(ACTION_NAMES)))
        chunk[3] = np.nan
        return chunk

    ex, arm = executor(ScriptedChunkPolicy(8, 50.0, chunk_fn=one_bad_action_per_chunk), limit=2)
    assert ex.run(max_steps=40).steps == 40
    assert ex.safety.counts["non_finite"] == 5 and all(np.isfinite(a).all() for _, a in arm.received)


def test_run_policy_with_a_nan_checkpoint_exits_with_an_error(tmp_path, capsys):
    from testing.sample_policies import make_policy, save_training_checkpoint
    from tools.run_policy import main

    policy = make_policy("mlp", seed=7)
    with torch.no_grad():
        for p in policy.actor.parameters():
            p.fill_(float("nan"))
    checkpoint = save_training_checkpoint(policy, tmp_path / "train")
    with pytest.raises(SystemExit) as done:
        main(["--robot.type=sim_so101", "--robot.task=lift", f"--policy.path={checkpoint}", "--episodes=1",
              "--max_steps=40", "--realtime=false", "--execution.max_non_finite_steps=10"])
    assert done.value.code != 0
    assert "NaN or infinite for 10 steps in a row" in capsys.readouterr().err
