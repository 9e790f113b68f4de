"""The simulated arms: models, servos, kinematics, units."""

import math

import numpy as np
import pytest

from robot.sim.arm import SimArm
from robot.sim.ik import top_down_rotation
from robot.sim.mjcf import ARM_SPECS, CUBE_HALF, scene_xml
from robot.sim.robot import SimKochConfig, SimSO101Config
from robot.sim.units import JointUnits

ARMS = ("so101", "koch")


def _pad_gap(arm: SimArm, gripper_angle: float) -> float:
    """Distance between the two pads' inner faces (pads are 3 mm thick) at a gripper angle."""
    q = np.array([*arm.spec.home_joints, gripper_angle])
    d = arm._scratch_at(q)
    a, b = d.geom_xpos[arm.pad_geoms[0]], d.geom_xpos[arm.pad_geoms[1]]
    return float(np.linalg.norm(a - b)) - 0.003


@pytest.mark.parametrize("arm_name", ARMS)
def test_model_loads_with_six_position_servos_and_a_free_cube(arm_name):
    arm = SimArm(arm_name)
    assert arm.model.nu == 6
    assert arm.model.nq == 6 + 7  # six hinges + the cube's free joint
    assert arm.model.opt.timestep * arm.n_substeps == pytest.approx(1 / 30)


def test_unknown_arm_raises_naming_the_known_ones():
    with pytest.raises(ValueError, match="koch.*so101"):
        scene_xml("ur5")


@pytest.mark.parametrize("arm_name", ARMS)
def test_home_pose_puts_the_tcp_at_home_with_the_jaws_down(arm_name):
    arm = SimArm(arm_name)
    pos, rot = arm.fk(np.array([*arm.spec.home_joints, arm.spec.gripper_ready]))
    np.testing.assert_allclose(pos, arm.spec.home_tcp, atol=1e-3)
    approach = rot @ np.asarray(arm.spec.approach_axis)
    assert approach[2] < -0.999


@pytest.mark.parametrize("arm_name", ARMS)
def test_joints_reach_commanded_targets_within_half_a_second(arm_name):
    arm = SimArm(arm_name)
    home = np.array([*arm.spec.home_joints, arm.spec.gripper_ready])
    arm.reset(home, np.array([0.0, 0.3, CUBE_HALF]), 0.0)
    target = home + np.array([0.3, 0.15, -0.2, 0.1, 0.5, -0.2 if arm_name == "so101" else 0.3])
    for _ in range(15):  # 0.5 s at 30 Hz
        arm.set_joint_targets(target)
        arm.step()
    np.testing.assert_allclose(arm.joint_positions(), target, atol=math.radians(1.0))


@pytest.mark.parametrize("arm_name", ARMS)
def test_jaws_open_wider_than_the_cube_and_close_narrower(arm_name):
    arm = SimArm(arm_name)
    assert _pad_gap(arm, arm.spec.gripper_ready) > 2 * CUBE_HALF + 0.012
    assert _pad_gap(arm, arm.spec.gripper_closed) < 2 * CUBE_HALF - 0.015


@pytest.mark.parametrize("arm_name", ARMS)
def test_fk_of_a_joint_vector_matches_the_simulated_tcp_and_leaves_the_sim_alone(arm_name):
    arm = SimArm(arm_name)
    home = np.array([*arm.spec.home_joints, arm.spec.gripper_ready])
    arm.reset(home, np.array([0.0, 0.3, CUBE_HALF]), 0.0)
    for _ in range(5):
        arm.set_joint_targets(home + 0.2)
        arm.step()
    before = arm.data.qpos.copy()
    np.testing.assert_allclose(arm.fk(arm.joint_positions())[0], arm.tcp_position(), atol=1e-9)
    arm.fk_batch(np.zeros((4, 6)))
    np.testing.assert_array_equal(arm.data.qpos, before)


def test_robot_fk_of_a_chunk_in_robot_units_matches_arm_fk():
    robot = SimSO101Config().build()
    chunk = np.array([[0, 0, 0, 0, 0, 50], [10, -20, 30, 40, 0, 50]], dtype=float)  # degrees / 0..100
    expected = robot.arm.fk_batch(np.array([robot.units.to_radians(u) for u in chunk]))
    np.testing.assert_allclose(robot.tcp_positions(chunk), expected)
    np.testing.assert_allclose(robot.tcp_position(chunk[1]), expected[1])


@pytest.mark.parametrize("arm_name", ARMS)
def test_top_down_rotation_points_the_jaws_down_and_closes_them_along_the_yaw(arm_name):
    arm = SimArm(arm_name)
    rot = top_down_rotation(arm, 0.3)
    np.testing.assert_allclose(rot @ np.asarray(arm.spec.approach_axis), [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(rot @ np.asarray(arm.spec.jaw_axis), [math.cos(0.3), math.sin(0.3), 0], atol=1e-12)


# ---------------------------------------------------------------------- units
def _units(arm_name: str, use_degrees: bool) -> JointUnits:
    spec = ARM_SPECS[arm_name]
    return JointUnits(spec.joint_low, spec.joint_high, spec.gripper_closed, spec.gripper_open, use_degrees)


@pytest.mark.parametrize("arm_name", ARMS)
@pytest.mark.parametrize("use_degrees", [True, False])
def test_units_round_trip(arm_name, use_degrees):
    units = _units(arm_name, use_degrees)
    q = np.random.default_rng(0).uniform(units.low, units.high, size=(20, 6))
    for row in q:
        np.testing.assert_allclose(units.to_radians(units.to_units(row)), row, atol=1e-12)


def test_body_joints_in_degrees_are_the_joint_angle_in_degrees():
    units = _units("so101", True)
    u = units.to_units(np.array([math.pi / 2, -math.pi / 4, 0, 0.1, 0, 0]))
    np.testing.assert_allclose(u[:5], [90, -45, 0, math.degrees(0.1), 0])


@pytest.mark.parametrize("arm_name", ARMS)
def test_normalised_body_joints_span_minus_100_to_100_over_the_joint_range(arm_name):
    units = _units(arm_name, False)
    np.testing.assert_allclose(units.to_units(units.low)[:5], -100)
    np.testing.assert_allclose(units.to_units(units.high)[:5], 100)


@pytest.mark.parametrize("arm_name", ARMS)
def test_gripper_reads_0_closed_and_100_open(arm_name):
    spec = ARM_SPECS[arm_name]
    units = _units(arm_name, spec.use_degrees_default)
    closed = np.array([0, 0, 0, 0, 0, spec.gripper_closed])
    opened = np.array([0, 0, 0, 0, 0, spec.gripper_open])
    assert units.to_units(closed)[5] == pytest.approx(0.0)
    assert units.to_units(opened)[5] == pytest.approx(100.0)
    np.testing.assert_allclose([units.unit_low[5], units.unit_high[5]], [0, 100])


def test_velocities_use_the_position_units_per_second():
    units = _units("koch", False)
    qdot = np.array([1.0, 0, 0, 0, 0, -1.0])
    v = units.velocity_to_units(qdot)
    assert v[0] == pytest.approx(200 / (2 * math.pi))       # full-turn pan: 200 units over 2π rad
    assert v[5] == pytest.approx(100 / (ARM_SPECS["koch"].gripper_closed - ARM_SPECS["koch"].gripper_open))


@pytest.mark.parametrize("config_cls", [SimSO101Config, SimKochConfig])
def test_commanded_gripper_and_joint_units_are_read_back_by_the_robot(config_cls):
    robot = config_cls(task="reach").build()
    robot.connect()
    command = robot.joint_positions().copy()
    command[0] += 5.0    # degrees (SO) or normalised units (Koch)
    command[5] = 80.0
    for _ in range(20):
        robot.send_action(dict(zip(robot.action_features, command)))
    obs = robot.get_observation()
    assert obs["shoulder_pan.pos"] == pytest.approx(command[0], abs=0.3)
    assert obs["gripper.pos"] == pytest.approx(80.0, abs=1.0)


def _anchors(arm_name: str) -> dict[str, np.ndarray]:
    arm = SimArm(arm_name)
    d = arm._scratch_at(np.zeros(6))
    return {n: d.joint(n).xanchor.copy() for n in ("shoulder_pan", "shoulder_lift", "elbow_flex",
                                                   "wrist_flex", "wrist_roll", "gripper")}


def test_so101_joint_axes_sit_where_the_real_arm_has_them():
    # shared/facts/arms.md: world joint anchors of the SO-101 at q = 0
    a = _anchors("so101")
    np.testing.assert_allclose(a["shoulder_lift"], [0.0692, -0.0183, 0.1166], atol=2e-4)
    np.testing.assert_allclose(a["elbow_flex"], [0.0972, -0.0183, 0.2292], atol=2e-4)
    np.testing.assert_allclose(a["wrist_flex"], [0.2321, -0.0183, 0.2344], atol=2e-4)
    np.testing.assert_allclose(a["wrist_roll"], [0.2932, -0.0002, 0.2344], atol=2e-4)


def test_koch_link_lengths_match_the_real_arm():
    # shared/facts/arms.md: lift axis 0.0563 above the table, upper arm 0.1095, forearm 0.1005
    a = _anchors("koch")
    assert a["shoulder_lift"][2] == pytest.approx(0.0563, abs=2e-4)
    assert np.linalg.norm(a["elbow_flex"] - a["shoulder_lift"]) == pytest.approx(0.1095, abs=1e-3)
    assert np.linalg.norm(a["wrist_flex"] - a["elbow_flex"]) == pytest.approx(0.1005, abs=1e-3)


def test_the_arm_collides_with_itself_not_only_with_the_world():
    import mujoco

    arm = SimArm("so101")
    folded = np.array([1.2012, 0.5637, 1.4917, 0.3377, -2.4948, 0.6109])  # gripper folded into the base
    d = arm._scratch_at(folded)
    mujoco.mj_collision(arm.model, d)
    bodies = {frozenset((arm.model.body(arm.model.geom_bodyid[c.geom1]).name,
                         arm.model.body(arm.model.geom_bodyid[c.geom2]).name)) for c in d.contact[:d.ncon]}
    assert frozenset(("base", "gripper")) in bodies
    # ... while the resting pose has no arm-arm contact
    d = arm._scratch_at(np.array([*arm.spec.home_joints, arm.spec.gripper_ready]))
    mujoco.mj_collision(arm.model, d)
    arm_bodies = {arm.model.body(b).name for b in range(arm.model.nbody)} - {"world", "cube", "bin", "target"}
    for c in d.contact[:d.ncon]:
        pair = {arm.model.body(arm.model.geom_bodyid[g]).name for g in (c.geom1, c.geom2)}
        assert not pair <= arm_bodies, f"unexpected self-contact {pair} at home"


def test_sim_robot_declares_joint_limits_in_robot_units_for_the_safety_layer():
    from robot.config import make_robot, robot_config_for

    robot = make_robot(robot_config_for("sim_so101"))
    limits = robot.joint_limits()
    assert list(limits) == [f"{m}.pos" for m in ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex",
                                                  "wrist_roll", "gripper")]
    assert limits["gripper.pos"] == (0.0, 100.0)
    lo, hi = limits["shoulder_pan.pos"]
    assert lo == pytest.approx(-110.0, abs=0.5) and hi == pytest.approx(110.0, abs=0.5)  # SO-101 pan +-110 deg
