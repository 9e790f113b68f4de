"""Action-queue bookkeeping (robot/action_queue.py), worked by hand on tiny 1-joint chunks."""

import math

import numpy as np
import pytest

from robot.action_queue import (
    Chunk,
    OpenLoopQueue,
    RecedingQueue,
    TemporalEnsembleQueue,
    ensemble_weights,
    make_action_queue,
)


def chunk(values, obs_step, arrival_step=None, fps=50.0):
    arrival_step = obs_step if arrival_step is None else arrival_step
    a = np.asarray(values, dtype=np.float32)[:, None]
    return Chunk(a, obs_step, obs_step / fps, arrival_step, arrival_step / fps)


def popped(queue, step):
    action, _ = queue.pop(step)
    return None if action is None else float(action[0])


def test_ensemble_weights_match_act_with_the_oldest_prediction_weighted_most():
    # By hand, m = 0.01: exp(0) = 1, exp(-0.01) = 0.99004983, exp(-0.02) = 0.98019867, sum 2.97024850.
    w = ensemble_weights(3, 0.01)
    np.testing.assert_allclose(w, [0.33667217, 0.33332222, 0.33000561], atol=1e-8)
    assert w[0] > w[1] > w[2]


def test_temporal_ensemble_averages_three_chunks_as_worked_by_hand():
    # m = ln 2: weights 1, 1/2, 1/4 for the oldest, middle, newest prediction of a step.
    q = TemporalEnsembleQueue(chunk_size=3, m=math.log(2))
    c0, c1, c2 = [10, 20, 30], [40, 50, 60], [70, 80, 90]  # predicted at steps 0, 1, 2
    q.add(chunk(c0, 0))
    assert popped(q, 0) == pytest.approx(10.0)                            # c0[0] alone
    q.add(chunk(c1, 1))
    assert popped(q, 1) == pytest.approx((1 * 20 + 0.5 * 40) / 1.5)       # c0[1], c1[0] -> 26.667
    q.add(chunk(c2, 2))
    assert popped(q, 2) == pytest.approx((4 * 30 + 2 * 50 + 1 * 70) / 7)  # c0[2], c1[1], c2[0] -> 41.429
    assert popped(q, 3) == pytest.approx((2 * 60 + 1 * 80) / 3)           # c1[2], c2[1] -> 66.667
    assert popped(q, 4) == pytest.approx(90.0)                            # c2[2]
    assert popped(q, 5) is None


def test_temporal_ensemble_with_act_coefficient_on_the_three_chunk_step():
    q = TemporalEnsembleQueue(chunk_size=3, m=0.01)
    for s, c in enumerate(([10, 20, 30], [40, 50, 60], [70, 80, 90])):
        q.add(chunk(c, s))
        action = popped(q, s)
    # 30 * 0.33667217 + 50 * 0.33332222 + 70 * 0.33000561 = 49.866669
    assert action == pytest.approx(49.866669, abs=1e-5)


def test_latency_compensation_indexes_a_late_chunk_by_its_observation_step():
    q = RecedingQueue(chunk_size=6, n_execute=6, latency_compensation=True)
    admission = q.add(chunk([0, 1, 2, 3, 4, 5], obs_step=10, arrival_step=13))
    assert (admission.origin, admission.stale, admission.accepted) == (10, 3, True)
    assert popped(q, 13) == 3.0  # actions 0..2 belonged to steps 10..12: dropped


def test_without_latency_compensation_a_late_chunk_replays_from_its_first_action():
    q = RecedingQueue(chunk_size=6, n_execute=6, latency_compensation=False)
    admission = q.add(chunk([0, 1, 2, 3, 4, 5], obs_step=10, arrival_step=13))
    assert (admission.origin, admission.stale) == (13, 0)
    assert popped(q, 13) == 0.0


def test_a_chunk_entirely_in_the_past_is_refused():
    q = TemporalEnsembleQueue(chunk_size=3)
    assert not q.add(chunk([1, 2, 3], obs_step=0, arrival_step=3)).accepted
    assert popped(q, 3) is None


def test_receding_switches_after_n_actions_and_an_early_chunk_waits_for_the_switch():
    q = RecedingQueue(chunk_size=6, n_execute=3)
    q.add(chunk([0, 1, 2, 3, 4, 5], obs_step=0))
    assert [popped(q, 0), popped(q, 1)] == [0.0, 1.0]
    q.add(chunk([10, 11, 12, 13, 14, 15], obs_step=1, arrival_step=2))  # early: waits for step 3
    assert popped(q, 2) == 2.0
    assert popped(q, 3) == 12.0  # switch at 0 + n = 3; the new chunk's action for step 3 is index 2


def test_receding_keeps_playing_the_old_chunk_while_the_next_is_late():
    q = RecedingQueue(chunk_size=6, n_execute=2)
    q.add(chunk([0, 1, 2, 3, 4, 5], obs_step=0))
    assert [popped(q, s) for s in range(5)] == [0.0, 1.0, 2.0, 3.0, 4.0]
    q.add(chunk([10, 11, 12, 13, 14, 15], obs_step=2, arrival_step=5))  # late: takes over on arrival
    assert popped(q, 5) == 13.0


def test_receding_asks_for_the_next_chunk_lead_steps_before_the_switch():
    q = RecedingQueue(chunk_size=8, n_execute=5)
    assert q.wants_chunk(0, lead_steps=3)  # empty queue
    q.add(chunk(range(8), obs_step=0))
    assert [s for s in range(8) if q.wants_chunk(s, lead_steps=3)] == [2, 3, 4, 5, 6, 7]


def test_open_loop_plays_every_action_then_asks_again():
    q = OpenLoopQueue(chunk_size=4)
    q.add(chunk([0, 1, 2, 3], obs_step=0, arrival_step=3))  # arrived 3 steps late: nothing dropped
    assert not q.wants_chunk(3, lead_steps=5)
    assert [popped(q, s) for s in range(3, 8)] == [0.0, 1.0, 2.0, 3.0, None]
    assert q.wants_chunk(7, lead_steps=5)


def test_blending_at_a_switch_is_linear_over_blend_steps():
    q = RecedingQueue(chunk_size=6, n_execute=2, blend_steps=2)
    q.add(chunk([0, 0, 0, 0, 0, 0], obs_step=0))
    popped(q, 0), popped(q, 1)
    q.add(chunk([30, 30, 30, 30, 30, 30], obs_step=2))
    # w = 1/3, 2/3, then the new chunk alone.
    assert [popped(q, s) for s in (2, 3, 4)] == pytest.approx([10.0, 20.0, 30.0])


def test_first_action_of_each_new_plan_is_flagged():
    q = RecedingQueue(chunk_size=4, n_execute=2)
    q.add(chunk([0, 1, 2, 3], obs_step=0))
    flags = [q.pop(0)[1], q.pop(1)[1]]
    q.add(chunk([5, 6, 7, 8], obs_step=2))
    flags += [q.pop(2)[1], q.pop(3)[1]]
    assert flags == [True, False, True, False]


def test_clear_empties_the_queue():
    q = make_action_queue("temporal_ensemble", 4)
    q.add(chunk([1, 2, 3, 4], obs_step=0))
    q.clear()
    assert q.depth(0) == 0 and popped(q, 0) is None


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="open_loop, receding, temporal_ensemble"):
        make_action_queue("closed_loop", 4)


def test_receding_plans_the_next_chunk_at_the_step_a_waiting_chunk_takes_over():
    # Latency longer than n: the request for the chunk after next must go out at the switch itself.
    q = RecedingQueue(chunk_size=8, n_execute=2)
    q.add(chunk(range(8), obs_step=0))
    q.pop(0)
    q.add(chunk(range(10, 18), obs_step=0, arrival_step=1))  # waits for the switch at step 2
    q.pop(1)
    assert q.wants_chunk(2, lead_steps=4)
