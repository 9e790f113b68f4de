"""The scripted expert: succeeds on every task, closed loop, as a policy and as a teleoperator."""

import gymnasium as gym
import numpy as np
import pytest

import robot.sim  # noqa: F401
from robot.config import TeleoperatorConfig
from robot.sim import ScriptedExpert, ScriptedTeleopConfig, SimKochConfig, SimSO101Config
from robot.sim.robot import SimRobot

CONFIGS = {"so101": SimSO101Config, "koch": SimKochConfig}


def _run(robot: SimRobot, expert: ScriptedExpert, max_steps: int) -> tuple[bool, int]:
    for step in range(1, max_steps + 1):
        robot.send_action(expert.act_dict(robot))
        if robot.is_success():
            return True, step
    return False, max_steps


def _robot(arm: str, task: str) -> SimRobot:
    robot = CONFIGS[arm](task=task).build()
    robot.connect()
    return robot


@pytest.mark.parametrize("arm", ["so101", "koch"])
def test_scripted_grasp_and_lift_succeeds_on_several_seeds(arm):
    robot, expert = _robot(arm, "lift"), ScriptedExpert()
    for seed in range(4):
        robot.reset(seed)
        ok, _ = _run(robot, expert, 150)
        assert ok, f"{arm} lift failed on seed {seed}"
        assert robot.arm.is_grasping() and robot.arm.cube_position()[2] > 0.0625


@pytest.mark.parametrize("arm", ["so101", "koch"])
def test_scripted_pick_and_place_leaves_the_cube_in_the_bin(arm):
    robot, expert = _robot(arm, "pick_place"), ScriptedExpert()
    for seed in range(2):
        robot.reset(seed)
        ok, _ = _run(robot, expert, 300)
        assert ok, f"{arm} pick_place failed on seed {seed}"
        assert not any(robot.arm.pad_contacts())


@pytest.mark.parametrize("arm", ["so101", "koch"])
def test_scripted_reach_gets_the_tcp_to_the_target(arm):
    robot, expert = _robot(arm, "reach"), ScriptedExpert()
    for seed in range(3):
        robot.reset(seed)
        ok, _ = _run(robot, expert, 100)
        assert ok, f"{arm} reach failed on seed {seed}"


def test_expert_with_action_noise_still_lifts():
    robot, expert = _robot("so101", "lift"), ScriptedExpert(noise=0.02, seed=1)
    results = []
    for seed in range(4):
        robot.reset(seed)
        results.append(_run(robot, expert, 150)[0])
    assert sum(results) >= 3


def test_noise_changes_the_actions_and_is_reproducible_by_seed():
    robot = _robot("so101", "lift")
    clean = ScriptedExpert().act(robot)
    a, b = ScriptedExpert(noise=0.02, seed=5).act(robot), ScriptedExpert(noise=0.02, seed=5).act(robot)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - clean).max() > 0.1  # degrees


def test_expert_is_closed_loop_and_regrasps_a_cube_moved_mid_grasp():
    robot, expert = _robot("so101", "lift"), ScriptedExpert()
    robot.reset(0)
    for _ in range(12):  # on its way down to the cube
        robot.send_action(expert.act_dict(robot))
    moved = robot.arm.cube_position() + np.array([-0.04, 0.05, 0.0])
    robot.arm.set_cube_pose(moved, 0.4)
    ok, _ = _run(robot, expert, 150)
    assert ok
    np.testing.assert_allclose(robot.arm.cube_position()[:2], moved[:2], atol=0.03)


def test_expert_drives_a_gym_env_through_its_wrappers():
    env = gym.make("chunkbot/KochLift-v0")
    env.reset(seed=2)
    expert = ScriptedExpert()
    for _ in range(150):
        _, reward, terminated, truncated, info = env.step(expert.act(env))
        if terminated or truncated:
            break
    assert terminated and info["is_success"] and reward == 1.0
    assert env.action_space.contains(expert.act(env))


def test_scripted_teleoperator_drives_the_bound_robot_to_success():
    robot = _robot("so101", "lift")
    robot.reset(7)
    # the "scripted" type is what --teleop.type=scripted resolves to (make_teleoperator calls build)
    config_cls = TeleoperatorConfig.get_choice_class("scripted")
    assert config_cls is ScriptedTeleopConfig
    teleop = config_cls(noise=0.0, seed=0).build(robot=robot)
    teleop.connect()
    assert set(teleop.action_features) == set(robot.action_features)
    for _ in range(150):
        robot.send_action(teleop.get_action())
        if robot.is_success():
            break
    assert robot.is_success()


def test_scripted_teleoperator_needs_a_sim_robot():
    with pytest.raises(ValueError, match="robot="):
        ScriptedTeleopConfig().build()
    with pytest.raises(TypeError, match="SimRobot"):
        ScriptedTeleopConfig().build(robot=object())


def test_env_expert_for_learners_maps_observations_to_valid_actions():
    from robot.sim.expert import make_env_expert

    env = gym.make("chunkbot/SO101Lift-v0")
    obs, _ = env.reset(seed=0)
    act = make_env_expert(env)
    for _ in range(150):
        obs, _, terminated, truncated, _ = env.step(act(obs))
        if terminated or truncated:
            break
    assert terminated
    assert env.unwrapped.action_names == tuple(env.unwrapped.robot.action_features)


@pytest.mark.parametrize("task", ["lift", "pick_place"])
def test_dense_reward_climbs_along_an_expert_episode_without_dipping_at_release(task):
    robot, expert = _robot("so101", task), ScriptedExpert()
    robot.reset(0)
    rewards = [robot.dense_reward()]
    for _ in range(300):
        robot.send_action(expert.act_dict(robot))
        rewards.append(robot.dense_reward())
        if robot.is_success():
            break
    assert rewards[-1] == 1.0 and rewards[0] < 0.2
    assert np.diff(rewards).min() > -0.06  # small wobbles only; no credit lost when letting go


def test_expert_actions_change_smoothly_from_one_period_to_the_next():
    robot, expert = _robot("so101", "pick_place"), ScriptedExpert()
    robot.reset(1)
    previous, steps = robot.joint_positions(), []
    for _ in range(300):
        action = expert.act(robot)
        steps.append(np.abs(action - previous))
        previous = action
        robot.send_action(dict(zip(robot.action_features, action)))
        if robot.is_success():
            break
    assert robot.is_success()
    assert np.max(np.array(steps)[:, :5]) < 10.0  # degrees per 1/30 s on the body joints


def test_expert_chunk_policy_plans_on_a_copy_and_leaves_the_live_robot_alone():
    from contract import ChunkPolicy
    from robot.sim.expert import ExpertChunkPolicy

    robot = _robot("koch", "lift")
    policy = ExpertChunkPolicy(robot, chunk_size=5)
    assert isinstance(policy, ChunkPolicy) and policy.fps == 30.0
    before = robot.arm.data.qpos.copy()
    chunk = policy.predict_chunk(None)
    assert chunk.shape == (5, 6) and chunk.dtype == np.float32
    np.testing.assert_array_equal(robot.arm.data.qpos, before)
    assert np.abs(chunk[-1] - chunk[0]).max() > 1.0  # a plan that moves, not one action repeated


@pytest.mark.parametrize("task", ["lift", "pick_place"])
def test_expert_chunks_played_open_loop_succeed(task):
    from robot.sim.expert import ExpertChunkPolicy

    robot = _robot("so101", task)
    policy = ExpertChunkPolicy(robot, chunk_size=10)
    for seed in range(2):
        robot.reset(seed)
        for _ in range(30):
            for action in policy.predict_chunk(None):
                robot.send_action(dict(zip(robot.action_features, action.tolist())))
            if robot.is_success():
                break
        assert robot.is_success(), f"{task} seed {seed}"


def test_expert_chunk_policy_lifts_through_the_chunk_executor_and_safety_layer():
    from robot.executor import ChunkExecutor, ExecutionConfig
    from robot.inference_worker import InlineInference
    from robot.interface import ACTION_NAMES
    from robot.safety import SafetyConfig
    from robot.sim.expert import ExpertChunkPolicy
    from robot.timing import FakeClock

    robot = _robot("so101", "lift")
    robot.reset(3)
    policy = ExpertChunkPolicy(robot, chunk_size=5)
    limits = {n: (float(lo), float(hi)) for n, lo, hi in zip(ACTION_NAMES, robot.action_low, robot.action_high)}
    executor = ChunkExecutor(robot, policy, ExecutionConfig(mode="receding"), clock=FakeClock(),
                             safety=SafetyConfig(joint_limits=limits), inference=InlineInference(policy))
    for _ in range(150):
        executor.step()
        if robot.is_success():
            break
    assert robot.is_success()


def test_expert_lifts_in_a_domain_randomised_scene():
    robot = SimKochConfig(task="lift", randomize=True).build()
    robot.connect()
    expert = ScriptedExpert()
    for seed in range(3):
        robot.reset(seed)
        assert _run(robot, expert, 150)[0], f"seed {seed}"
