"""SimRobot (the Robot interface over the sim) and the gymnasium envs."""

import math
import warnings
from dataclasses import dataclass

import draccus
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import robot.sim  # noqa: F401  (registers the envs and the sim robot types; sets MUJOCO_GL first)
from robot.config import RobotConfig, make_robot, robot_config_for
from robot.features import STATE_KEY, to_policy_frame
from robot.interface import ACTION_NAMES, RobotError
from robot.sim import ENV_IDS, SimRobot, SimSO101Config
from robot.sim.robot import VELOCITY_NAMES

import mujoco  # noqa: E402, I001  # isort: skip  (after robot.sim, which picks the headless GL backend)


def _hold(robot: SimRobot) -> dict[str, float]:
    return dict(zip(ACTION_NAMES, robot.joint_positions()))


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_check_env_passes(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium's advice on unbounded / unnormalised boxes
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_check_env_passes_with_cameras_and_rendering():
    env = gym.make("chunkbot/KochLift-v0", cameras=["front", "wrist"], image_height=48, image_width=64,
                   render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped)
    assert env.observation_space["observation.images.wrist"].shape == (48, 64, 3)
    env.close()


@pytest.mark.parametrize("camera", ["front", "wrist"])
def test_camera_frames_are_hxwx3_uint8_and_not_blank(camera):
    robot = SimSO101Config(cameras=[camera], image_height=64, image_width=80).build()
    robot.connect()
    frame = robot.get_observation()[camera]
    assert frame.shape == (64, 80, 3) and frame.dtype == np.uint8
    assert frame.std() > 10.0  # a real scene, not a flat colour
    robot.disconnect()


def test_front_and_wrist_cameras_see_different_things():
    robot = SimSO101Config(cameras=["front", "wrist"], image_height=48, image_width=48).build()
    robot.connect()
    obs = robot.get_observation()
    assert np.abs(obs["front"].astype(int) - obs["wrist"].astype(int)).mean() > 10.0


def test_observation_features_are_positions_then_velocities_then_task_state():
    robot = SimSO101Config(task="lift").build()
    names = list(robot.observation_features)
    assert names[:6] == list(ACTION_NAMES)
    assert names[6:12] == list(VELOCITY_NAMES)
    assert names[12:] == ["tcp.x", "tcp.y", "tcp.z", "cube.x", "cube.y", "cube.z", "cube.yaw"]
    reach = SimSO101Config(task="reach").build()
    assert list(reach.observation_features)[-3:] == ["target.x", "target.y", "target.z"]


def test_policy_frame_state_matches_the_observation_space():
    env = gym.make("chunkbot/SO101PickPlace-v0")
    obs, _ = env.reset(seed=1)
    assert obs[STATE_KEY].shape == env.observation_space[STATE_KEY].shape == (19,)
    robot = env.unwrapped.robot
    np.testing.assert_array_equal(obs[STATE_KEY], to_policy_frame(robot.get_observation(),
                                                                 robot.observation_features)[STATE_KEY])


def test_unknown_task_raises_naming_the_known_tasks():
    with pytest.raises(ValueError, match="reach, lift, pick_place"):
        SimSO101Config(task="stack").build()


def test_unknown_camera_raises_naming_the_known_cameras():
    with pytest.raises(ValueError, match="front, wrist"):
        SimSO101Config(cameras=["top"]).build()


def test_unknown_robot_type_raises_listing_the_sim_types():
    with pytest.raises(ValueError, match="sim_koch.*sim_so101"):
        robot_config_for("sim_ur5")


@dataclass
class _Cli:
    robot: RobotConfig


def test_sim_robot_types_build_through_the_config_registry_and_draccus():
    robot = make_robot(robot_config_for("sim_koch", task="reach"))
    assert isinstance(robot, SimRobot) and robot.name == "sim_koch" and robot.config.use_degrees is False
    cfg = draccus.parse(_Cli, args=["--robot.type=sim_so101", "--robot.task=pick_place",
                                    "--robot.cameras=[wrist]"]).robot
    assert cfg.type == "sim_so101" and cfg.task == "pick_place" and cfg.cameras == ["wrist"]
    assert cfg.use_degrees is True


def test_out_of_range_action_is_clipped_and_the_returned_dict_shows_it():
    robot = SimSO101Config().build()
    robot.connect()
    action = _hold(robot)
    action["shoulder_pan.pos"] = 500.0   # degrees, beyond ±110
    action["gripper.pos"] = -20.0
    sent = robot.send_action(action)
    assert sent["shoulder_pan.pos"] == pytest.approx(math.degrees(1.91986))
    assert sent["gripper.pos"] == 0.0
    assert sent["elbow_flex.pos"] == pytest.approx(action["elbow_flex.pos"])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_action_raises_a_clear_value_error(bad):
    robot = SimSO101Config().build()
    robot.connect()
    action = _hold(robot)
    action["wrist_flex.pos"] = bad
    before = robot.arm.data.qpos.copy()
    with pytest.raises(ValueError, match="wrist_flex.pos"):
        robot.send_action(action)
    np.testing.assert_array_equal(robot.arm.data.qpos, before)  # nothing moved


def test_missing_action_key_raises_key_error_naming_it():
    robot = SimSO101Config().build()
    robot.connect()
    action = _hold(robot)
    del action["gripper.pos"]
    with pytest.raises(KeyError, match="gripper.pos"):
        robot.send_action(action)


def test_reading_before_connect_raises_a_robot_error():
    with pytest.raises(RobotError, match="connect"):
        SimSO101Config().build().get_observation()


def test_send_action_advances_exactly_one_control_period():
    robot = SimSO101Config(fps=20).build()
    robot.connect()
    t0 = robot.arm.time
    robot.send_action(_hold(robot))
    robot.send_action(_hold(robot))
    assert robot.arm.time - t0 == pytest.approx(2 / 20)


def test_reset_with_a_seed_is_reproducible_and_seeds_differ():
    env = gym.make("chunkbot/SO101Lift-v0")
    a, _ = env.reset(seed=3)
    b, _ = env.reset(seed=3)
    c, _ = env.reset(seed=4)
    np.testing.assert_array_equal(a[STATE_KEY], b[STATE_KEY])
    assert not np.allclose(a[STATE_KEY][15:18], c[STATE_KEY][15:18])  # cube position


def test_cube_starts_on_the_table_inside_the_spawn_sector():
    robot = SimSO101Config().build()
    spec = robot.arm.spec
    for seed in range(20):
        robot.reset(seed)
        cube = robot.arm.cube_position()
        rel = cube[:2] - np.asarray(spec.pan_axis_xy)
        assert spec.cube_spawn_radius[0] <= np.linalg.norm(rel) <= spec.cube_spawn_radius[1]
        assert abs(math.atan2(rel[1], rel[0])) <= spec.cube_spawn_half_angle
        assert cube[2] == pytest.approx(0.0125)


def test_holding_still_truncates_at_the_time_limit_without_terminating():
    env = gym.make("chunkbot/SO101Reach-v0")
    env.reset(seed=0)
    hold = env.unwrapped.robot.joint_positions().astype(np.float32)
    for step in range(1, 101):  # noqa: B007 (checked after the loop)
        _, reward, terminated, truncated, info = env.step(hold)
        assert not terminated and reward == 0.0 and info["is_success"] is False
    assert step == 100 and truncated


def test_success_terminates_with_sparse_reward_one():
    env = gym.make("chunkbot/SO101Reach-v0")
    env.reset(seed=0)
    robot = env.unwrapped.robot
    robot.arm.data.mocap_pos[robot.arm.target_mocap] = robot.arm.tcp_position()  # target at the TCP
    _, reward, terminated, truncated, info = env.step(robot.joint_positions().astype(np.float32))
    assert reward == 1.0 and terminated and not truncated and info["is_success"]


def test_dense_reward_is_in_unit_range_and_grows_as_the_tcp_nears_the_cube():
    env = gym.make("chunkbot/SO101Lift-v0", reward_type="dense")
    env.reset(seed=0)
    robot = env.unwrapped.robot
    far = robot.dense_reward()
    robot.arm.set_cube_pose(robot.arm.tcp_position() + np.array([0.0, 0.0, -0.01]), 0.0)
    mujoco.mj_forward(robot.arm.model, robot.arm.data)
    near = robot.dense_reward()
    assert 0.0 <= far < near <= 1.0


def test_unknown_reward_type_raises():
    with pytest.raises(ValueError, match="sparse"):
        gym.make("chunkbot/SO101Lift-v0", reward_type="shaped")


def test_action_space_bounds_are_the_joint_ranges_in_robot_units():
    env = gym.make("chunkbot/KochLift-v0")
    np.testing.assert_allclose(env.action_space.low, [-100] * 5 + [0])
    np.testing.assert_allclose(env.action_space.high, [100] * 6)
    so = gym.make("chunkbot/SO101Lift-v0")
    assert so.action_space.high[0] == pytest.approx(math.degrees(1.91986), rel=1e-6)


def test_a_broken_gl_backend_leaves_camera_less_sim_working_and_cameras_fail_clearly():
    # MUJOCO_GL=osmesa breaks mujoco's own import where libOSMesa is missing (as on this machine);
    # where it is present, rendering simply works. Either way the camera-less robot must run.
    import os
    import subprocess
    import sys

    script = (
        "from robot.interface import RobotError\n"
        "from robot.sim import SimSO101Config\n"
        "r = SimSO101Config().build(); r.connect(); r.send_action(dict(zip(r.action_features, r.joint_positions())))\n"
        "print('STATE_OK')\n"
        "try:\n"
        "    c = SimSO101Config(cameras=['front']).build(); c.connect(); c.get_observation()['front']\n"
        "    print('CAMERA_OK')\n"
        "except RobotError as e:\n"
        "    assert 'cameras=[]' in str(e), e\n"
        "    print('CAMERA_CLEAR_ERROR')\n"
    )
    env = {**os.environ, "MUJOCO_GL": "osmesa"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "STATE_OK" in out.stdout
    assert "CAMERA_OK" in out.stdout or "CAMERA_CLEAR_ERROR" in out.stdout


def test_mujoco_imported_before_robot_sim_gives_a_clear_camera_error_not_a_crash():
    import os
    import subprocess
    import sys

    script = (
        "import mujoco\n"  # picks GLFW: no MUJOCO_GL yet
        "from robot.interface import RobotError\n"
        "from robot.sim import SimSO101Config\n"
        "r = SimSO101Config().build(); r.connect(); r.send_action(dict(zip(r.action_features, r.joint_positions())))\n"
        "try:\n"
        "    SimSO101Config(cameras=['front']).build().connect()\n"
        "except RobotError as e:\n"
        "    assert 'imported before' in str(e) and 'cameras=[]' in str(e), e\n"
        "    print('CLEAR_ERROR')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "CLEAR_ERROR" in out.stdout


@pytest.mark.parametrize("state_features,dim", [("privileged", 19), ("joints", 12), ("positions", 6)])
def test_state_feature_sets_shape_the_observation(state_features, dim):
    env = gym.make("chunkbot/SO101Lift-v0", state_features=state_features, cameras=["wrist"],
                   image_height=32, image_width=32)
    obs, _ = env.reset(seed=0)
    assert obs[STATE_KEY].shape == env.observation_space[STATE_KEY].shape == (dim,)
    assert env.unwrapped.state_names[:6] == list(ACTION_NAMES)
    assert "observation.images.wrist" in obs


def test_unknown_state_feature_set_raises_naming_the_known_ones():
    with pytest.raises(ValueError, match="privileged, joints, positions"):
        SimSO101Config(state_features="everything").build()


def test_a_cube_knocked_off_the_table_lands_on_the_floor_instead_of_falling_forever():
    robot = SimSO101Config().build()
    robot.connect()
    robot.arm.set_cube_pose(np.array([0.8, 0.0, 0.05]), 0.0)  # beyond the table's edge
    for _ in range(30):
        robot.send_action(_hold(robot))
    assert robot.get_observation()["cube.z"] == pytest.approx(-0.04 + 0.0125, abs=1e-3)


def test_randomize_redraws_the_scene_each_reset_reproducibly_by_seed():
    robot = SimSO101Config(randomize=True, cameras=["front"], image_height=32, image_width=32).build()
    robot.connect()
    cube = robot.arm.model.body("cube").id

    def draw(seed):
        frame = robot.reset(seed)["front"]
        m = robot.arm.model
        return frame, float(m.body_mass[cube]), m.actuator_gainprm[:6, 0].copy()

    (f1, mass1, kp1), (f2, mass2, kp2), (f1b, mass1b, kp1b) = draw(1), draw(2), draw(1)
    assert mass1 != mass2 and not np.allclose(kp1, kp2)
    assert mass1 == mass1b and np.array_equal(kp1, kp1b) and np.array_equal(f1, f1b)
    assert np.abs(f1.astype(int) - f2.astype(int)).mean() > 1.0  # the images change too


def test_without_randomize_the_scene_keeps_its_nominal_values():
    robot = SimSO101Config().build()
    m = robot.arm.model
    mass, kp = float(m.body_mass[m.body("cube").id]), m.actuator_gainprm[:6, 0].copy()
    robot.reset(5)
    assert float(m.body_mass[m.body("cube").id]) == mass and np.array_equal(m.actuator_gainprm[:6, 0], kp)


def test_randomized_servo_gains_keep_position_servos_consistent():
    # a MuJoCo position servo is kp * ctrl - kp * qpos: gain and bias must be scaled together
    robot = SimSO101Config(randomize=True).build()
    m = robot.arm.model
    np.testing.assert_allclose(m.actuator_biasprm[:6, 1], -m.actuator_gainprm[:6, 0])


def test_an_episode_replays_exactly_from_the_same_seed_and_actions():
    env = gym.make("chunkbot/KochPickPlace-v0")
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(30)]

    def rollout():
        obs, _ = env.reset(seed=11)
        states = [obs[STATE_KEY]]
        for a in actions:
            states.append(env.step(a)[0][STATE_KEY])
        return np.stack(states)

    np.testing.assert_array_equal(rollout(), rollout())


@pytest.mark.parametrize("field,value", [("physics_timestep", 0.05), ("physics_timestep", 0.0),
                                         ("image_height", 0), ("fps", 0)])
def test_invalid_settings_raise_naming_the_setting(field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        SimSO101Config(**{field: value}).build()


def test_step_cost_reward_is_the_dense_reward_minus_one_so_success_pays_the_most():
    dense, cost = gym.make("chunkbot/SO101Lift-v0", reward_type="dense"), gym.make("chunkbot/SO101Lift-v0",
                                                                                  reward_type="step_cost")
    dense.reset(seed=3), cost.reset(seed=3)
    hold = dense.unwrapped.robot.joint_positions().astype(np.float32)
    for _ in range(3):
        _, r_dense, *_ = dense.step(hold)
        _, r_cost, *_ = cost.step(hold)
        assert r_cost == pytest.approx(r_dense - 1.0) and r_cost <= 0.0


def test_env_kwargs_reach_the_env_through_make_env():
    from policy.training import make_env

    env = make_env("chunkbot/SO101Lift-v0", reward_type="step_cost", max_episode_steps=7)
    assert env.unwrapped.reward_type == "step_cost" and env.spec.max_episode_steps == 7
