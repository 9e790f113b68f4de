"""MJCF scenes for the simulated SO-101 and Koch v1.1 arms, written from primitives.

Kinematic frames, joint ranges, masses and servo gains are the numbers collected in
`shared/facts/arms.md` (SO-101 from the MuJoCo Menagerie / TheRobotStudio chain, Koch from the
6-motor gym-lowcostrobot chain); the geometry (capsules, boxes, cylinders) is our own and only
coarse, except where it matters for the task: the jaws. Each gripper is a fixed jaw plus a
hinged moving jaw with high-friction contact pads (condim 6: torsional and rolling friction keep a
held cube from spinning), and a `tcp` site sits where the centre of a grasped 2.5 cm cube ends up.

The scene around the arm is the same for every task: a table (top at z = 0), a free 2.5 cm cube,
an open-top bin (box walls) to one side, a mocap reach target (visual only), a fixed "front"
camera and a "wrist" camera riding on the gripper.

Collision filtering: arm geoms have contype 2 / conaffinity 3 and the world's objects
contype 1 / conaffinity 3, so the arm touches the table, cube and bin and also itself (a gripper
folded into the base stops there, as on the real arm); MuJoCo already skips parent-child pairs,
so neighbouring links never rub at their joints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contract import MOTOR_NAMES

CUBE_HALF = 0.0125  # 2.5 cm cube
CUBE_MASS = 0.03    # kg, within the 10-30 g of a printed cube

MOTORS = MOTOR_NAMES  # joint and actuator names in the model: LeRobot's motor names


@dataclass(frozen=True)
class ArmSpec:
    """What the rest of robot.sim needs to know about one arm's scene (besides the XML)."""

    name: str
    # radians, per motor in MOTORS order; the gripper's range is [closed, open] sorted
    joint_ranges: tuple[tuple[float, float], ...]
    gripper_closed: float          # joint angle (rad) of a fully closed gripper
    gripper_open: float            # joint angle (rad) of a fully open gripper
    pan_axis_xy: tuple[float, float]
    cube_spawn_radius: tuple[float, float]   # from the pan axis, metres
    cube_spawn_half_angle: float             # radians either side of the arm's forward (+x)
    bin_center_xy: tuple[float, float]
    bin_inner_half: float          # half the inner side of the square bin
    bin_wall_height: float
    reach_radius: tuple[float, float]        # reach-target sampling radius from the pan axis
    reach_height: tuple[float, float]
    approach_axis: tuple[float, float, float]  # TCP-site-frame axis that points out of the jaws
    jaw_axis: tuple[float, float, float]       # TCP-site-frame axis along which the jaws close
    # Resting pose (rad, body joints): the IK solution for the TCP at `home_tcp` with the jaws
    # pointing down (tests/test_sim_arm.py checks it), from which every episode starts.
    home_joints: tuple[float, float, float, float, float]
    home_tcp: tuple[float, float, float]
    gripper_ready: float           # joint angle (rad) of the jaws opened for a 2.5 cm cube (~45 mm)
    use_degrees_default: bool

    @property
    def joint_low(self) -> np.ndarray:
        return np.array([r[0] for r in self.joint_ranges])

    @property
    def joint_high(self) -> np.ndarray:
        return np.array([r[1] for r in self.joint_ranges])


SO101 = ArmSpec(
    name="so101",
    joint_ranges=(
        (-1.91986, 1.91986),
        (-1.7453293, 1.7453293),
        (-1.69, 1.69),
        (-1.658063, 1.658063),
        (-2.74385, 2.84121),
        (-0.174533, 1.7453292),
    ),
    gripper_closed=-0.174533,
    gripper_open=1.7453292,
    pan_axis_xy=(0.0388353, 0.0),
    cube_spawn_radius=(0.15, 0.26),
    cube_spawn_half_angle=math.radians(50),
    bin_center_xy=(0.0388353, -0.20),
    bin_inner_half=0.045,
    bin_wall_height=0.03,
    reach_radius=(0.12, 0.28),
    reach_height=(0.03, 0.20),
    approach_axis=(0.0, 0.0, -1.0),
    jaw_axis=(1.0, 0.0, 0.0),
    home_joints=(-0.001, -0.1469, 0.2002, 1.5167, 0.0477),
    home_tcp=(0.22, 0.0, 0.08),
    gripper_ready=0.40,
    use_degrees_default=True,
)

KOCH = ArmSpec(
    name="koch",
    joint_ranges=(
        (-math.pi, math.pi),   # full-turn motor in LeRobot's calibration
        (-1.6, 1.6),
        (-1.6, 1.6),
        (-1.8, 1.8),
        (-math.pi, math.pi),   # full-turn motor
        (-2.45, 0.032),
    ),
    gripper_closed=0.032,
    gripper_open=-2.45,
    pan_axis_xy=(-0.012, 0.0),
    cube_spawn_radius=(0.11, 0.19),
    cube_spawn_half_angle=math.radians(50),
    bin_center_xy=(-0.012, -0.16),
    bin_inner_half=0.04,
    bin_wall_height=0.025,
    reach_radius=(0.10, 0.20),
    reach_height=(0.03, 0.16),
    approach_axis=(-1.0, 0.0, 0.0),
    jaw_axis=(0.0, 1.0, 0.0),
    home_joints=(-0.0156, -0.1572, -0.271, -1.685, -0.0156),
    home_tcp=(0.12, 0.0, 0.08),
    gripper_ready=-1.1,
    use_degrees_default=False,
)

ARM_SPECS: dict[str, ArmSpec] = {"so101": SO101, "koch": KOCH}
KOCH_GRASP_ANGLE = -0.55  # gripper angle (rad) at which the Koch claw holds a 2.5 cm cube


def _lookat_xyaxes(eye: tuple[float, float, float], target: tuple[float, float, float]) -> str:
    """`xyaxes` for a camera at `eye` looking at `target` with world +z up (cameras look along -z)."""
    eye_v, tgt = np.asarray(eye, float), np.asarray(target, float)
    back = eye_v - tgt
    back /= np.linalg.norm(back)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    return " ".join(f"{v:.5f}" for v in (*right, *up))


def _inertial(pos: str, mass: float, radius: float = 0.03) -> str:
    # A sphere-like inertia of the body's real mass about its real centre of mass: the full
    # tensors in the sources matter less than mass and COM for a position-controlled arm.
    i = 0.4 * mass * radius * radius
    return f'<inertial pos="{pos}" mass="{mass}" diaginertia="{i:.3e} {i:.3e} {i:.3e}"/>'


def _so101_arm() -> str:
    r = SO101.joint_ranges
    rng = [f"{lo} {hi}" for lo, hi in r]
    return f"""
    <body name="base" pos="0 0 0">
      <geom class="link" type="cylinder" pos="0.0388 0 0.028" size="0.042 0.028"/>
      <geom class="link" type="box" pos="0.0 0 0.02" size="0.03 0.045 0.02"/>
      <body name="shoulder" pos="0.0388353 0 0.0624" quat="0 0 -1 0">
        {_inertial("-0.0308 0 -0.0253", 0.100006)}
        <joint name="shoulder_pan" range="{rng[0]}"/>
        <geom class="link" type="box" pos="-0.015 -0.01 -0.03" size="0.03 0.025 0.025"/>
        <body name="upper_arm" pos="-0.0303992 -0.0182778 -0.0542" quat="1 -1 -1 -1">
          {_inertial("-0.0898 -0.0084 0.0184", 0.103)}
          <joint name="shoulder_lift" range="{rng[1]}"/>
          <geom class="link" type="capsule" fromto="0 0 0.018 -0.11257 -0.028 0.018" size="0.017"/>
          <body name="lower_arm" pos="-0.11257 -0.028 0" quat="1 0 0 1">
            {_inertial("-0.0981 0.0032 0.0183", 0.104)}
            <joint name="elbow_flex" range="{rng[2]}"/>
            <geom class="link" type="capsule" fromto="0 0 0.018 -0.1349 0.0052 0.018" size="0.015"/>
            <body name="wrist" pos="-0.1349 0.0052 0" quat="1 0 0 -1">
              {_inertial("-0.0001 -0.0386 0.0281", 0.079)}
              <joint name="wrist_flex" range="{rng[3]}"/>
              <geom class="link" type="box" pos="0 -0.03 0.018" size="0.015 0.029 0.018"/>
              <body name="gripper" pos="0 -0.0611 0.0181" quat="0.0172091 -0.0172091 0.706897 0.706897">
                {_inertial("0.0002 0.0002 -0.0252", 0.099)}
                <joint name="wrist_roll" range="{rng[4]}"/>
                <!-- palm / gripper motor housing, then the fixed jaw (inner face at x = -0.0081) -->
                <geom class="link" type="box" pos="-0.0025 0 -0.022" size="0.0325 0.015 0.015"/>
                <geom class="link" type="box" pos="-0.0131 0 -0.058" size="0.005 0.011 0.022"/>
                <geom class="pad" name="fixed_pad" type="box" pos="-0.0096 0 -0.09" size="0.0015 0.010 0.012"/>
                <site name="tcp" pos="0.0044 0 -0.089" size="0.004" rgba="1 0.2 0.2 0.6" group="3"/>
                <camera name="wrist" pos="0 0.03 -0.03" xyaxes="1 0 0 0 0.919 -0.394" fovy="80"/>
                <body name="moving_jaw" pos="0.0202 0.0188 -0.0234" quat="1 1 0 0">
                  {_inertial("-0.0016 -0.0300 0.0193", 0.012, 0.02)}
                  <joint name="gripper" range="{rng[5]}"/>
                  <geom class="link" type="box" pos="-0.005 -0.035 0.0192" size="0.005 0.025 0.009"/>
                  <geom class="pad" name="moving_pad" type="box" pos="-0.0105 -0.067 0.0192" size="0.0015 0.012 0.010"/>
                </body>
              </body>
            </body>
          </body>
        </body>
      </body>
    </body>"""


def _koch_arm() -> str:
    r = KOCH.joint_ranges
    rng = [f"{lo} {hi}" for lo, hi in r]
    # Moving jaw: a claw on a hinge, so its pad is mounted turned by the grasp angle: at that angle
    # it is parallel to the fixed pad with a cube's width between them (a tilted pad would wedge
    # the cube out towards the tips, which a real claw's curved finger avoids).
    static_face_y = 0.0033 + CUBE_HALF
    pad_x = -0.05
    hinge = np.array([-0.01315, -0.0075])
    pad_at_grasp = np.array([pad_x, static_face_y - 2 * CUBE_HALF - 0.0015]) - hinge
    c, s = math.cos(KOCH_GRASP_ANGLE), math.sin(KOCH_GRASP_ANGLE)
    pad6 = np.array([c * pad_at_grasp[0] - s * pad_at_grasp[1], s * pad_at_grasp[0] + c * pad_at_grasp[1]])
    return f"""
    <body name="base" pos="0 0 0" quat="0 0 0 1">
      <geom class="link" type="box" pos="0.005 0 0.018" size="0.035 0.035 0.018"/>
      <body name="link_1" pos="0.012 0 0.0409">
        {_inertial("0.0119 -0.0005 0.0134", 0.05014)}
        <joint name="shoulder_pan" axis="0 0 -1" range="{rng[0]}"/>
        <geom class="link" type="box" pos="0 -0.01 0.012" size="0.018 0.024 0.014"/>
        <body name="link_2" pos="0 -0.0209 0.0154">
          {_inertial("0.0012 0.0210 0.0715", 0.050177)}
          <joint name="shoulder_lift" axis="0 1 0" range="{rng[1]}"/>
          <geom class="link" type="capsule" fromto="0 0.02 0 -0.0148 0.02 0.1083" size="0.014"/>
          <body name="link_3" pos="-0.0148 0.0065 0.1083">
            {_inertial("-0.0554 0.0145 0.0029", 0.06379)}
            <joint name="elbow_flex" axis="0 -1 0" range="{rng[2]}"/>
            <geom class="link" type="capsule" fromto="0 0.014 0 -0.10048 0.014 0.0027" size="0.012"/>
            <body name="link_4" pos="-0.10048 0.00005 0.0027">
              {_inertial("-0.0265 0.0192 0", 0.019805)}
              <joint name="wrist_flex" axis="0 1 0" range="{rng[3]}"/>
              <geom class="link" type="capsule" fromto="0 0.014 0 -0.045 0.013 0" size="0.011"/>
              <body name="link_5" pos="-0.045 0.013097 0">
                {_inertial("-0.0191 0.0053 0.0002", 0.029277)}
                <joint name="wrist_roll" axis="1 0 0" range="{rng[4]}"/>
                <geom class="link" type="box" pos="-0.01 0.002 0.004" size="0.01 0.02 0.016"/>
                <geom class="link" type="box" pos="-0.041 {static_face_y + 0.005:.4f} 0.001" size="0.021 0.003 0.011"/>
                <geom class="pad" name="fixed_pad" type="box" pos="{pad_x} {static_face_y + 0.0015:.4f} 0.001" size="0.012 0.0015 0.011"/>
                <site name="tcp" pos="{pad_x} 0.0033 0.001" size="0.004" rgba="1 0.2 0.2 0.6" group="3"/>
                <camera name="wrist" pos="-0.005 0 0.035" xyaxes="0 1 0 -0.537 0 0.844" fovy="80"/>
                <body name="link_6" pos="-0.01315 -0.0075 0.0145">
                  {_inertial("-0.0251 0.0011 -0.0141", 0.012831, 0.02)}
                  <joint name="gripper" axis="0 0 -1" range="{rng[5]}"/>
                  <geom class="visual" type="capsule" fromto="0 0 -0.0135 {pad6[0]:.5f} {pad6[1]:.5f} -0.0135" size="0.005"/>
                  <geom class="pad" name="moving_pad" type="box" pos="{pad6[0]:.5f} {pad6[1]:.5f} -0.0135"
                        euler="0 0 {KOCH_GRASP_ANGLE}" size="0.012 0.0015 0.011"/>
                </body>
              </body>
            </body>
          </body>
        </body>
      </body>
    </body>"""  # noqa: E501


# Servo models per arm: (kp N·m/rad, kv N·m·s/rad, force limit N·m, joint damping, armature, frictionloss).
# SO-101: the Menagerie's STS3215 identification (gains derived for LeRobot's P=16).
# Koch: XL430-W250 (1.4 N·m stall, ~6 rad/s) on pan/lift, XL330-M288 (0.52 N·m, ~10.8 rad/s) on the
# rest; damping = stall torque / no-load speed (the motor's own back-EMF line), gains tuned here
# so a joint settles within a 30 Hz control period or two.
_SO101_SERVO = {m: (998.22, 2.731, 2.94, 0.60, 0.028, 0.052) for m in MOTORS}
# LeRobot's SO follower caps the gripper servo at Max_Torque_Limit 500 (50 %) so it cannot crush
# what it holds: half the stall torque here too.
_SO101_SERVO["gripper"] = (998.22, 2.731, 1.47, 0.60, 0.028, 0.052)
_KOCH_SERVO = {
    "shoulder_pan": (40.0, 0.8, 1.4, 0.23, 0.02, 0.02),
    "shoulder_lift": (40.0, 0.8, 1.4, 0.23, 0.02, 0.02),
    "elbow_flex": (25.0, 0.4, 0.52, 0.05, 0.008, 0.01),
    "wrist_flex": (25.0, 0.4, 0.52, 0.05, 0.008, 0.01),
    "wrist_roll": (25.0, 0.4, 0.52, 0.05, 0.008, 0.01),
    "gripper": (25.0, 0.4, 0.52, 0.05, 0.008, 0.01),
}


def _actuators(spec: ArmSpec, servo: dict[str, tuple[float, ...]]) -> str:
    lines = []
    for name, (lo, hi) in zip(MOTORS, spec.joint_ranges):
        kp, kv, frc, *_ = servo[name]
        lines.append(
            f'<position name="{name}" joint="{name}" kp="{kp}" kv="{kv}" '
            f'forcerange="{-frc} {frc}" ctrlrange="{lo} {hi}"/>'
        )
    return "\n    ".join(lines)


def scene_xml(arm: str, timestep: float = 0.002) -> str:
    """The full MJCF of `arm` ("so101" | "koch") on its table with cube, bin, target and cameras."""
    if arm not in ARM_SPECS:
        raise ValueError(f"unknown arm {arm!r}; known arms: {', '.join(sorted(ARM_SPECS))}")
    spec = ARM_SPECS[arm]
    servo = _SO101_SERVO if arm == "so101" else _KOCH_SERVO
    body = _so101_arm() if arm == "so101" else _koch_arm()
    # joint dynamics come from the servo table, so the chains above carry only kinematics
    for name in MOTORS:
        _, _, _, damping, armature, frictionloss = servo[name]
        body = body.replace(
            f'<joint name="{name}"',
            f'<joint name="{name}" damping="{damping}" armature="{armature}" frictionloss="{frictionloss}"',
        )
    pad_friction = "1 0.005 0.0005" if arm == "so101" else "1.5 0.005 0.0005"
    px, py = spec.pan_axis_xy
    bx, by = spec.bin_center_xy
    h, t, wall = spec.bin_inner_half, 0.004, spec.bin_wall_height
    scale = 0.85 if arm == "so101" else 0.62  # the front camera frames the arm's workspace
    eye = (px + 0.62 * scale, py + 0.05 * scale, 0.42 * scale)
    look = (px + 0.10 * scale, py - 0.06 * scale, 0.06 * scale)
    front_xyaxes = _lookat_xyaxes(eye, look)
    return f"""<mujoco model="chunkbot_{arm}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <global offwidth="640" offheight="480"/>
    <quality shadowsize="0"/>
  </visual>
  <default>
    <joint axis="0 0 1"/>
    <geom solref="0.01 1"/>
    <default class="link">
      <geom contype="2" conaffinity="3" rgba="0.95 0.55 0.15 1" density="0"/>
    </default>
    <default class="pad">
      <geom contype="2" conaffinity="3" condim="6" friction="{pad_friction}" priority="1"
            solref="0.01 1" rgba="0.15 0.15 0.15 1" density="0"/>
    </default>
    <default class="visual">
      <geom contype="0" conaffinity="0" rgba="0.95 0.55 0.15 1" density="0"/>
    </default>
    <default class="world">
      <geom contype="1" conaffinity="3"/>
    </default>
  </default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.82 0.78 0.72" rgb2="0.76 0.72 0.66" width="256" height="256"/>
    <material name="table" texture="grid" texrepeat="8 8"/>
  </asset>
  <worldbody>
    <light pos="0.2 0.3 1.0" dir="-0.1 -0.3 -1" diffuse="0.8 0.8 0.8" castshadow="false"/>
    <light pos="0.6 -0.4 0.8" dir="-0.5 0.4 -0.8" diffuse="0.4 0.4 0.4" castshadow="false"/>
    <!-- the floor under the table catches a cube knocked off it, so its position stays bounded -->
    <geom name="floor" class="world" type="plane" pos="0 0 -0.04" size="2 2 0.1" rgba="0.3 0.32 0.35 1"/>
    <geom name="table" class="world" type="box" pos="0.15 0 -0.02" size="0.45 0.45 0.02" material="table" friction="0.6 0.005 0.0001"/>
    <camera name="front" pos="{eye[0]:.4f} {eye[1]:.4f} {eye[2]:.4f}" xyaxes="{front_xyaxes}" fovy="58"/>
    {body}
    <body name="cube" pos="{px + 0.2} 0 {CUBE_HALF}">
      <freejoint name="cube"/>
      <geom name="cube" class="world" type="box" size="{CUBE_HALF} {CUBE_HALF} {CUBE_HALF}" mass="{CUBE_MASS}"
            condim="4" friction="1 0.005 0.0001" rgba="0.85 0.1 0.1 1"/>
    </body>
    <body name="bin" pos="{bx} {by} 0">
      <geom class="world" type="box" pos="0 0 0.001" size="{h} {h} 0.001" rgba="0.2 0.35 0.8 1"/>
      <geom class="world" type="box" pos="{h + t} 0 {wall / 2}" size="{t} {h + 2 * t} {wall / 2}" rgba="0.2 0.35 0.8 1"/>
      <geom class="world" type="box" pos="{-h - t} 0 {wall / 2}" size="{t} {h + 2 * t} {wall / 2}" rgba="0.2 0.35 0.8 1"/>
      <geom class="world" type="box" pos="0 {h + t} {wall / 2}" size="{h} {t} {wall / 2}" rgba="0.2 0.35 0.8 1"/>
      <geom class="world" type="box" pos="0 {-h - t} {wall / 2}" size="{h} {t} {wall / 2}" rgba="0.2 0.35 0.8 1"/>
    </body>
    <body name="target" mocap="true" pos="0 0 -1">
      <site name="target" type="sphere" size="0.012" rgba="0.1 0.8 0.2 0.6"/>
    </body>
  </worldbody>
  <actuator>
    {_actuators(spec, servo)}
  </actuator>
</mujoco>
"""  # noqa: E501
