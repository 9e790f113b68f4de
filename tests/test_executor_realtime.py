"""The executor in real time: RealClock deadlines and inference on its own thread (robot/executor.py).

Assertions are in control steps or with several-period margins, because the test machine is
shared; a loop blocked by inference would miss them by far more.
"""

import threading

import numpy as np
import pytest

from robot.executor import ChunkExecutor, ExecutionConfig
from robot.safety import SafetyConfig
from robot.timing import SOURCE_OVERRIDE, RealClock
from tests.executor_doubles import FirstOrderArm, ScriptedChunkPolicy

FPS = 50.0
DT = 1.0 / FPS
PERMISSIVE = SafetyConfig(max_delta_per_step=1e6, max_start_jump=1e6)


def make(delay_s, mode="receding", intervention=None, chunk_size=10):
    clock = RealClock()
    arm = FirstOrderArm(clock)
    arm.connect()
    policy = ScriptedChunkPolicy(chunk_size, FPS, delay_s=delay_s)
    ex = ChunkExecutor(arm, policy, ExecutionConfig(mode=mode), safety=PERMISSIVE, clock=clock,
                       intervention=intervention)
    return ex, arm, policy


def test_a_policy_slower_than_eight_periods_never_blocks_the_loop():
    ex, arm, policy = make(delay_s=8 * DT, chunk_size=20)
    with ex:
        ex.run(max_steps=40)
    rows = ex.timing.rows()
    sent = rows["sent"][np.isfinite(rows["sent"])]
    assert len(sent) == 40  # a command every period
    assert np.diff(sent).max() < 5 * DT  # a blocked loop would show gaps of >= 8 periods
    assert policy.calls >= 3
    assert np.nanmin(rows["latency"]) >= 8 * DT


def test_takeover_from_another_thread_acts_within_one_period_and_drops_the_chunk_in_flight():
    human = {"on": False, "step": None}
    override = np.full(6, -7.0)
    ex, arm, policy = make(delay_s=4 * DT, intervention=lambda obs: override if human["on"] else None)

    def take_over():
        human["step"] = ex.step_index  # the step in progress (it may already have polled the hook)
        human["on"] = True

    timer = threading.Timer(0.3, take_over)
    with ex:
        timer.start()
        ex.run(max_steps=40)
    timer.join()
    rows = ex.timing.rows()
    first_override = int(rows["step"][rows["source"] == SOURCE_OVERRIDE][0])
    assert first_override <= human["step"] + 1
    assert (rows["source"][rows["step"] >= first_override] == SOURCE_OVERRIDE).all()
    assert ex.discarded_chunks >= 1  # the chunk being computed at takeover was thrown away


def test_flush_from_another_thread_empties_the_queue_by_the_next_period():
    ex, arm, policy = make(delay_s=0.0, mode="open_loop", chunk_size=50)  # 1 s of plan
    gate = threading.Event()
    flushed_at = {}

    def flush_after_the_first_chunk():
        while policy.calls < 1:
            threading.Event().wait(0.005)
        threading.Event().wait(0.1)
        flushed_at["step"] = ex.step_index
        policy.gate = gate  # the next prediction stalls, so only the flush can explain a hold
        ex.flush()

    t = threading.Thread(target=flush_after_the_first_chunk)
    with ex:
        t.start()
        ex.run(max_steps=25)
        t.join()
        gate.set()
    rows = ex.timing.rows()
    assert rows["queue_depth"][rows["step"] < flushed_at["step"]][-1] > 30  # most of the chunk was left
    depth_after = rows["queue_depth"][rows["step"] > flushed_at["step"]]
    assert depth_after.size and (depth_after == 0).all()


def test_timing_summary_reports_period_and_jitter_of_a_real_run():
    ex, arm, policy = make(delay_s=0.002)
    with ex:
        ex.run(max_steps=25)
    s = ex.timing.summary()
    assert s["steps"] == 25
    assert s["period_p50_ms"] == pytest.approx(DT * 1e3, abs=2.0)
    assert 0.0 <= s["jitter_p50_ms"] < DT * 1e3
