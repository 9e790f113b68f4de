"""`SimRobot`: a simulated SO-101 or Koch arm behind the same `Robot` interface as the real ones.

Units are LeRobot's (see robot.sim.units): `<motor>.pos` body joints in degrees or [-100, 100],
gripper in [0, 100] (0 closed). Observations: the six `<motor>.pos`, the six `<motor>.vel` (same
units per second), the task's features (TCP, cube, target in metres; cube yaw in radians), then
one `(H, W, 3)` uint8 frame per configured camera. `state_features="joints"` drops the task
features, `"positions"` keeps only the `<motor>.pos`, like a real follower arm. `obs_mode="pixels"`
is that plus the `front` and `wrist` cameras: exactly the features of the real follower (LeRobot's
`so101_follower` / `koch_follower`) with two cameras of those names.

Time: **`send_action` sets the joint targets and advances the physics by one control period**
(1 / fps). So a control loop that calls `get_observation()` and `send_action()` once per tick
runs the sim at the loop's rate with no extra call, and a real-time executor can treat the sim
exactly like a servo bus. `reset(seed)` starts a new episode (arm at home, cube/target randomised).

Privileged state for scripted experts and views: `robot.arm` (the `SimArm`: TCP, cube, contacts,
FK) and `robot.task` (success, dense reward); `tcp_position(joints)` / `tcp_positions(chunk)` give
forward kinematics of joint vectors in robot units (e.g. a predicted action chunk).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contract import ARM_TYPES, OBS_MODES
from robot.config import RobotConfig
from robot.interface import ACTION_NAMES, MOTOR_NAMES, InProcessDevice, Robot, RobotError, action_dict_to_array
from robot.sim.arm import CAMERAS, SimArm
from robot.sim.randomize import SceneRandomizer
from robot.sim.task_spec import TASKS, SimTask, make_task
from robot.sim.units import JointUnits

VELOCITY_NAMES: tuple[str, ...] = tuple(f"{m}.vel" for m in MOTOR_NAMES)
STATE_FEATURE_SETS = ("privileged", "joints", "positions")
MAX_PHYSICS_TIMESTEP = 0.01  # s


@dataclass(kw_only=True)
class SimRobotConfig(RobotConfig):
    """Common settings of the simulated arms (the registered types below pick the arm)."""

    task: str = "lift"                  # "reach" | "lift" | "pick_place"
    fps: int = 30                       # control rate: one send_action = 1 / fps of simulated time
    physics_timestep: float = 0.002     # upper bound; shrunk so that 1 / fps is a whole number of steps
    seed: int | None = 0                # episode randomisation (cube, target, start pose)
    cameras: list[str] = field(default_factory=list)   # subset of ["front", "wrist"]; [] = no rendering
    image_height: int = 96
    image_width: int = 96
    use_degrees: bool = True
    start_joint_noise: float = 0.02     # rad, uniform noise on the home pose at reset
    # Which float features the robot reports: "privileged" = joint positions, velocities, TCP and
    # task state (cube / target); "joints" = positions and velocities; "positions" = only the
    # `<motor>.pos`, exactly what a real LeRobot follower reports (for image policies meant to
    # transfer). Success and rewards always use the full simulator state.
    state_features: str = "privileged"
    # Domain randomisation (robot.sim.randomize): cube mass / friction / colour, lights, table tint,
    # front camera pose, servo gains and damping, re-drawn at every reset.
    randomize: bool = False
    # "state" (the default): the float features above, cameras as listed; "pixels": the arm's joint
    # positions and camera frames only, as a real follower reports them (learning from what a real arm
    # sees): state_features becomes "positions" and cameras, when none are listed, ["front", "wrist"]
    obs_mode: str = "state"

    arm_name = "so101"                  # class attribute, not a setting: which MJCF

    def __post_init__(self) -> None:
        if self.obs_mode == "pixels":
            self.state_features = "positions"
            self.cameras = list(self.cameras) or list(CAMERAS)

    def build(self) -> "SimRobot":
        return SimRobot(self)


@RobotConfig.register_subclass("sim_so101")
@dataclass(kw_only=True)
class SimSO101Config(SimRobotConfig):
    arm_name = "so101"
    use_degrees: bool = ARM_TYPES["sim_so101"].degrees_by_default   # LeRobot's SO default: degrees


@RobotConfig.register_subclass("sim_koch")
@dataclass(kw_only=True)
class SimKochConfig(SimRobotConfig):
    arm_name = "koch"
    use_degrees: bool = ARM_TYPES["sim_koch"].degrees_by_default    # LeRobot's Koch default: [-100, 100]


class SimRobot(InProcessDevice, Robot):
    """A MuJoCo arm scene that reads and writes like a LeRobot follower arm."""

    _latest: weakref.ref[SimRobot] | None = None

    def __init__(self, config: SimRobotConfig):
        if config.task not in TASKS:
            raise ValueError(f"unknown sim task {config.task!r}; known tasks: {', '.join(TASKS)}")
        unknown = [c for c in config.cameras if c not in CAMERAS]
        if unknown:
            raise ValueError(f"unknown sim camera(s) {unknown}; known cameras: {', '.join(CAMERAS)}")
        if config.obs_mode not in OBS_MODES:
            raise ValueError(f"unknown obs_mode {config.obs_mode!r}; use one of {', '.join(OBS_MODES)}")
        if config.state_features not in STATE_FEATURE_SETS:
            raise ValueError(f"unknown state_features {config.state_features!r}; "
                             f"use one of {', '.join(STATE_FEATURE_SETS)}")
        if config.fps <= 0:
            raise ValueError(f"fps must be positive, got {config.fps}")
        if not 0 < config.physics_timestep <= MAX_PHYSICS_TIMESTEP:
            raise ValueError(f"physics_timestep must be in (0, {MAX_PHYSICS_TIMESTEP}] s, got "
                             f"{config.physics_timestep}: contacts (grasps) go unstable with longer steps")
        if config.image_height <= 0 or config.image_width <= 0:
            raise ValueError(f"image size must be positive, got {config.image_height}x{config.image_width}")
        self.config = config
        self.name = f"sim_{config.arm_name}"
        self.arm = SimArm(config.arm_name, control_dt=1.0 / config.fps, timestep=config.physics_timestep)
        self.task: SimTask = make_task(config.task)
        spec = self.arm.spec
        self.units = JointUnits(
            low=spec.joint_low, high=spec.joint_high,
            gripper_closed=spec.gripper_closed, gripper_open=spec.gripper_open,
            use_degrees=config.use_degrees,
        )
        self.action_low = self.units.unit_low
        self.action_high = self.units.unit_high
        self.home_joints = np.array([*spec.home_joints, spec.gripper_ready])
        self._rng = np.random.default_rng(config.seed)
        self._randomizer = SceneRandomizer(self.arm) if config.randomize else None
        # Physics and snapshots are serialised, so a planner on another thread (the expert as a
        # chunk policy) never copies a half-stepped state.
        self._lock = threading.RLock()
        self.episode_step = 0
        self.reset(config.seed)
        SimRobot._latest = weakref.ref(self)

    @classmethod
    def latest(cls) -> SimRobot:
        """The simulated arm this process built last. For LeRobot's tools, which build a teleoperator
        from its config alone (no way to hand it the follower), so the scripted expert finds its arm here."""
        robot = cls._latest() if cls._latest is not None else None
        if robot is None:
            raise RobotError("the scripted teleoperator drives a simulated arm, and none was built: "
                             "use --robot.type=sim_so101 or sim_koch")
        return robot

    # ------------------------------------------------------------------ Robot interface
    @property
    def observation_features(self) -> dict[str, Any]:
        feats: dict[str, Any] = {n: float for n in ACTION_NAMES}
        if self.config.state_features in ("joints", "privileged"):
            feats.update({n: float for n in VELOCITY_NAMES})
        if self.config.state_features == "privileged":
            feats.update({n: float for n in self.task.feature_names})
        for cam in self.config.cameras:
            feats[cam] = (self.config.image_height, self.config.image_width, 3)
        return feats

    @property
    def cameras(self) -> dict[str, tuple[int, int, int]]:
        """Camera name -> frame shape (LeRobot's tools count a robot's `cameras`)."""
        return {cam: (self.config.image_height, self.config.image_width, 3) for cam in self.config.cameras}

    def connect(self, calibrate: bool = True) -> None:
        super().connect(calibrate)
        for cam in self.config.cameras:  # fail here, not mid-episode, when there is no GL
            self.arm.render(cam, self.config.image_height, self.config.image_width)

    def disconnect(self) -> None:
        self.arm.close()
        super().disconnect()

    def get_observation(self) -> dict[str, Any]:
        self._require_connected()
        obs = self.state_dict()
        for cam in self.config.cameras:
            obs[cam] = self.arm.render(cam, self.config.image_height, self.config.image_width)
        return obs

    def send_action(self, action: dict[str, float]) -> dict[str, float]:
        """Clip to the joint ranges, set the servo goals, advance one control period; returns what was sent."""
        self._require_connected()
        values = action_dict_to_array(action).astype(np.float64)
        bad = [n for n, v in zip(ACTION_NAMES, values) if not np.isfinite(v)]
        if bad:
            raise ValueError(f"non-finite action for {bad}: {[action[n] for n in bad]}; refusing to move")
        sent = np.clip(values, self.action_low, self.action_high)
        with self._lock:
            self.arm.set_joint_targets(self.units.to_radians(sent))
            self.arm.step()
            self.episode_step += 1
        return {n: float(v) for n, v in zip(ACTION_NAMES, sent)}

    # ------------------------------------------------------------------ simulation extras
    def reset(self, seed: int | None = None) -> dict[str, Any] | None:
        """New episode: arm at home (with noise), cube / target from the task. Returns the
        observation when connected (None before connect)."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        cube, yaw, target = self.task.sample_start(self.arm, self._rng)
        noise = self._rng.uniform(-1, 1, 6) * self.config.start_joint_noise
        noise[5] = 0.0
        with self._lock:
            if self._randomizer is not None:
                self._randomizer.apply(self._rng)
            self.arm.reset(self.home_joints + noise, cube, yaw, target)
            self.episode_step = 0
        return self.get_observation() if self._connected else None

    def copy_state_to(self, other: "SimRobot") -> None:
        """Make `other` (a robot of the same arm type) an exact copy of this one's physical state."""
        if other.arm.spec.name != self.arm.spec.name:
            raise ValueError(f"cannot copy a {self.name} state into a {other.name}")
        import mujoco

        with self._lock:
            mujoco.mj_copyData(other.arm.data, self.arm.model, self.arm.data)
            other.episode_step = self.episode_step

    def state_dict(self) -> dict[str, float]:
        """All float features (no images), in declared order."""
        pos = self.units.to_units(self.arm.joint_positions())
        obs = {n: float(v) for n, v in zip(ACTION_NAMES, pos)}
        if self.config.state_features in ("joints", "privileged"):
            vel = self.units.velocity_to_units(self.arm.joint_velocities())
            obs.update({n: float(v) for n, v in zip(VELOCITY_NAMES, vel)})
        if self.config.state_features == "privileged":
            obs.update({n: float(v) for n, v in zip(self.task.feature_names, self.task.features(self.arm))})
        return obs

    def is_success(self) -> bool:
        return self.task.is_success(self.arm)

    def dense_reward(self) -> float:
        return self.task.dense_reward(self.arm)

    def joint_limits(self) -> dict[str, tuple[float, float]]:
        """`{"<motor>.pos": (lo, hi)}` in robot units: the model's joint ranges, as the safety layer reads
        them from a real arm's calibration."""
        return {n: (float(lo), float(hi)) for n, lo, hi in zip(ACTION_NAMES, self.action_low, self.action_high)}

    def joint_positions(self) -> np.ndarray:
        """Present joint positions in robot units (6,)."""
        return self.units.to_units(self.arm.joint_positions())

    def tcp_position(self, joints: np.ndarray | None = None) -> np.ndarray:
        """TCP position (m) at `joints` (robot units, 6); the present one when None."""
        if joints is None:
            return self.arm.tcp_position()
        return self.arm.fk(self.units.to_radians(joints))[0]

    def tcp_positions(self, chunk: np.ndarray) -> np.ndarray:
        """TCP positions (N, 3) for N joint vectors in robot units (e.g. an (h, 6) action chunk)."""
        chunk = np.atleast_2d(np.asarray(chunk, float))
        return self.arm.fk_batch(np.stack([self.units.to_radians(u) for u in chunk]))

    def _require_connected(self) -> None:
        if not self._connected:
            raise RobotError(f"{self.name} is not connected: call connect() first")


# LeRobot builds a plugin's robot from its config's class name minus "Config" (`make_device_from_device_class`
# looks for `SimSO101` next to `SimSO101Config`): the same class under the names it looks for.
SimSO101 = SimKoch = SimRobot
