"""A scripted expert for the sim tasks: waypoints on privileged state + damped-least-squares IK.

Closed loop by construction: every call looks only at the present state (joints, TCP, cube,
pad contacts) and decides what to do from it, with no memory of earlier calls. So it can drive
the robot tick by tick, feed a chunk executor, take over after a human or a policy, and retry
a failed grasp. The phase is read off the state:

    cube held (both pads touch, jaws closed on it) -> lift it / carry it over the bin / release
    jaws closing on a cube between them            -> keep closing
    TCP aligned above the cube                     -> descend with the jaws open, close at the bottom
    otherwise                                      -> open the jaws, rise if low, go above the cube

Targets move at a bounded TCP speed and bounded joint steps, so actions stay smooth enough to
learn from. Use it
- as a policy: `ScriptedExpert().act(env_or_robot)` -> joint targets (6,) in robot units;
- for learners: `make_env_expert(env)` -> `obs -> action`;
- as a teleoperator: `ScriptedTeleopConfig(noise=..., seed=...).build(robot=sim_robot)`
  (`--teleop.type=scripted`);
- as a chunk policy for the executor: `ExpertChunkPolicy(sim_robot, chunk_size=h)` plans h steps
  ahead on a private copy of the simulation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from robot.config import TeleoperatorConfig
from robot.interface import ACTION_NAMES, InProcessDevice, Teleoperator
from robot.sim.ik import solve_ik, top_down_rotation
from robot.sim.mjcf import CUBE_HALF
from robot.sim.robot import SimRobot
from robot.sim.task_spec import LIFT_HEIGHT

FAST_STEP = 0.012     # m per control period in free motion (0.36 m/s at 30 Hz)
SLOW_STEP = 0.006     # m per control period when descending onto / lifting the cube
ALIGN_XY = 0.006      # TCP this close (horizontally) above the cube before descending
AT_GRASP = 0.006      # TCP this close (vertically; twice that horizontally) to the grasp point before closing
IN_HAND = 0.02        # cube centre this close to the TCP counts as between the jaws
MAX_JOINT_STEP = 0.12     # rad: largest body-joint target change from the present joint per period
MAX_GRIPPER_STEP = 0.3    # rad: same for the gripper


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _step_towards(current: np.ndarray, goal: np.ndarray, max_step: float) -> np.ndarray:
    delta = goal - current
    dist = float(np.linalg.norm(delta))
    return goal.copy() if dist <= max_step else current + delta * (max_step / dist)


def resolve_sim_robot(target: Any) -> SimRobot:
    """The SimRobot behind a SimRobot, a chunkbot sim env, or a wrapped one."""
    if isinstance(target, SimRobot):
        return target
    inner = getattr(getattr(target, "unwrapped", None), "robot", None)
    if isinstance(inner, SimRobot):
        return inner
    raise TypeError(
        f"the scripted expert reads privileged sim state: pass a SimRobot or a chunkbot sim env, "
        f"not {type(target).__name__}"
    )


class ScriptedExpert:
    """Waypoint + IK expert for reach / lift / pick_place on either sim arm."""

    def __init__(self, noise: float = 0.0, seed: int | None = 0, ik_iterations: int = 15):
        self.noise = float(noise)   # std (rad) of Gaussian noise added to the body-joint targets
        self.ik_iterations = ik_iterations
        self._rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)

    def act(self, target: Any) -> np.ndarray:
        """Joint targets (6,) float32 in robot units for the present state of `target`."""
        robot = resolve_sim_robot(target)
        q_goal = self.joint_goal(robot)
        if self.noise > 0:
            q_goal[:5] += self._rng.normal(0.0, self.noise, 5)
        units = robot.units.to_units(q_goal)
        return np.clip(units, robot.action_low, robot.action_high).astype(np.float32)

    def act_dict(self, target: Any) -> dict[str, float]:
        return {n: float(v) for n, v in zip(ACTION_NAMES, self.act(target))}

    # ------------------------------------------------------------------ the script
    def joint_goal(self, robot: SimRobot) -> np.ndarray:
        """Joint targets (rad, 6) without noise."""
        arm, spec = robot.arm, robot.arm.spec
        q = arm.joint_positions()
        tcp, rot = arm.tcp_position(), arm.tcp_rotation()
        jaw = rot @ np.asarray(spec.jaw_axis)
        jaw_yaw = math.atan2(jaw[1], jaw[0])
        task = robot.task.name

        if task == "reach":
            goal = _step_towards(tcp, arm.target_position(), FAST_STEP)
            return self._ik(arm, q, goal, jaw_yaw, spec.gripper_closed)

        cube = arm.cube_position()
        grip_closing = self._jaw_fraction(q[5], spec) < 0.8
        in_hand = float(np.linalg.norm(cube - tcp)) < IN_HAND

        if in_hand and grip_closing and arm.is_grasping():
            return self._carry(robot, q, tcp, cube, jaw_yaw)
        if in_hand and grip_closing:  # closing on the cube: hold still until both pads bite
            return self._ik(arm, q, tcp, jaw_yaw, spec.gripper_closed)

        grasp_yaw = self._grasp_yaw(arm.cube_yaw(), jaw_yaw)
        # The TCP is where a held cube ends up, against the fixed jaw; to descend without touching,
        # centre the cube between the open jaws instead (closing then slides it onto the fixed jaw).
        mid_gap = 0.5 * (arm.data.geom_xpos[arm.pad_geoms[0]] + arm.data.geom_xpos[arm.pad_geoms[1]])
        centring = np.array([mid_gap[0] - tcp[0], mid_gap[1] - tcp[1], 0.0])
        grasp_point = np.array([cube[0], cube[1], cube[2] + 0.002]) - centring
        above = grasp_point + np.array([0.0, 0.0, 0.043])
        dxy = float(np.linalg.norm(tcp[:2] - grasp_point[:2]))
        yaw_error = abs(_wrap(jaw_yaw - grasp_yaw))
        if grip_closing:  # closed on nothing (missed or dropped): open before anything else
            goal = _step_towards(tcp, np.array([tcp[0], tcp[1], max(tcp[2], above[2])]), SLOW_STEP)
            return self._ik(arm, q, goal, jaw_yaw, spec.gripper_ready)
        # Hysteresis: start the descent only when well aligned, but once below the approach height
        # keep descending through looser alignment, so noisy actions do not bounce it back up.
        started = tcp[2] < above[2] - 0.005
        aligned = (dxy < ALIGN_XY and yaw_error < math.radians(8)) or (
            started and dxy < 2.5 * ALIGN_XY and yaw_error < math.radians(15))
        if aligned and tcp[2] < above[2] + 0.01:
            if tcp[2] - grasp_point[2] < AT_GRASP and dxy < 2 * AT_GRASP:
                return self._ik(arm, q, grasp_point, grasp_yaw, spec.gripper_closed)
            goal = _step_towards(tcp, grasp_point, SLOW_STEP)
            return self._ik(arm, q, goal, grasp_yaw, spec.gripper_ready)
        if tcp[2] < above[2] - 0.015 and dxy > 2 * ALIGN_XY:  # low and off to the side: rise first
            goal = _step_towards(tcp, np.array([tcp[0], tcp[1], above[2]]), FAST_STEP)
            return self._ik(arm, q, goal, jaw_yaw, spec.gripper_ready)
        goal = _step_towards(tcp, above, FAST_STEP if dxy > 0.03 else SLOW_STEP)
        return self._ik(arm, q, goal, grasp_yaw, spec.gripper_ready)

    def _carry(self, robot: SimRobot, q, tcp, cube, jaw_yaw) -> np.ndarray:
        arm, spec = robot.arm, robot.arm.spec
        if robot.task.name == "lift":
            goal = _step_towards(tcp, np.array([tcp[0], tcp[1], CUBE_HALF + LIFT_HEIGHT + 0.025]), SLOW_STEP)
            return self._ik(arm, q, goal, jaw_yaw, spec.gripper_closed)
        # pick_place: up to a height that clears the bin wall, swing over the bin, let go
        carry_z = spec.bin_wall_height + CUBE_HALF + 0.03
        offset = tcp - cube                                  # keep the grip offset while moving the cube
        bin_xy = np.asarray(spec.bin_center_xy)
        if cube[2] < carry_z - 0.015 and float(np.linalg.norm(cube[:2] - bin_xy)) > 0.03:
            goal = _step_towards(tcp, np.array([tcp[0], tcp[1], carry_z + offset[2]]), SLOW_STEP)
            return self._ik(arm, q, goal, jaw_yaw, spec.gripper_closed)
        cube_goal = self._polar_step(np.asarray(spec.pan_axis_xy), cube[:2], bin_xy, FAST_STEP)
        goal = np.array([cube_goal[0], cube_goal[1], carry_z]) + offset
        if float(np.linalg.norm(cube[:2] - bin_xy)) < 0.012:
            return self._ik(arm, q, goal, jaw_yaw, spec.gripper_ready)   # release
        return self._ik(arm, q, goal, jaw_yaw, spec.gripper_closed)

    @staticmethod
    def _polar_step(centre: np.ndarray, start: np.ndarray, goal: np.ndarray, max_step: float) -> np.ndarray:
        """Next point from `start` towards `goal` moving on an arc about the pan axis (radius and
        bearing change together), so a carry swings around the arm instead of cutting past its base."""
        s, g = start - centre, goal - centre
        rs, rg = float(np.linalg.norm(s)), float(np.linalg.norm(g))
        ts, tg = math.atan2(s[1], s[0]), math.atan2(g[1], g[0])
        dt, dr = _wrap(tg - ts), rg - rs
        length = math.hypot(dt * max(rs, rg), dr)
        frac = 1.0 if length <= max_step else max_step / length
        r, t = rs + frac * dr, ts + frac * dt
        return centre + r * np.array([math.cos(t), math.sin(t)])

    @staticmethod
    def _jaw_fraction(angle: float, spec) -> float:
        """0 at fully closed, 1 at the ready opening (beyond 1 when opened wider)."""
        return (angle - spec.gripper_closed) / (spec.gripper_ready - spec.gripper_closed)

    @staticmethod
    def _grasp_yaw(cube_yaw: float, jaw_yaw: float) -> float:
        """Of the four jaw directions that face the cube squarely, the one nearest the present jaw."""
        candidates = [cube_yaw + k * math.pi / 2 for k in range(4)]
        return min(candidates, key=lambda c: abs(_wrap(c - jaw_yaw)))

    def _ik(self, arm, q, goal, yaw, gripper) -> np.ndarray:
        q_goal, _ = solve_ik(arm, q, goal, top_down_rotation(arm, yaw), iterations=self.ik_iterations)
        q_goal[5] = gripper
        # Bounded steps from the present joints: a large re-orientation (wrist roll to the cube's
        # yaw) or a gripper open/close is spread over a few periods instead of one jump, which keeps
        # demonstrations smooth and inside a runtime's per-step rate limits. A servo pressing on a
        # held cube still sees the full squeeze (its error saturates the force long before this).
        step = q_goal - q
        step[:5] = np.clip(step[:5], -MAX_JOINT_STEP, MAX_JOINT_STEP)
        step[5] = np.clip(step[5], -MAX_GRIPPER_STEP, MAX_GRIPPER_STEP)
        return q + step


def make_env_expert(env: Any, noise: float = 0.0, seed: int | None = 0) -> Callable[[Any], np.ndarray]:
    """A demonstrator for a chunkbot sim env in the `obs -> action` shape learners expect
    (the observation is ignored: the expert reads the env's privileged state instead)."""
    expert = ScriptedExpert(noise=noise, seed=seed)
    resolve_sim_robot(env)  # fail now, not at the first action, for a non-sim env
    return lambda observation=None: expert.act(env)


class ExpertChunkPolicy:
    """The scripted expert as a `ChunkPolicy`: each chunk is planned by running the expert for
    `chunk_size` control periods on a private copy of the robot's present physical state, so an
    executor can play it open loop (or receding / ensembled) like a learned chunk policy.

    The plan starts from the robot's state when `predict_chunk` runs (the observation frame only
    selects the moment), so with inference on a thread it is at most that latency fresher than
    the frame; with inline inference the two are the same."""

    def __init__(self, robot: SimRobot, chunk_size: int = 5, noise: float = 0.0, seed: int | None = 0):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.robot = robot
        self.chunk_size = chunk_size
        self.action_names = ACTION_NAMES
        self.fps = float(robot.config.fps)
        self.expert = ScriptedExpert(noise=noise, seed=seed)
        # the shadow runs the nominal scene: with domain randomisation on, plans assume nominal
        # physics and the closed loop (a fresh plan every chunk) absorbs the difference
        self._shadow = SimRobot(dataclasses.replace(robot.config, cameras=[], randomize=False))
        self._shadow.connect()

    def predict_chunk(self, observation: dict[str, np.ndarray] | None = None) -> np.ndarray:
        self.robot.copy_state_to(self._shadow)
        chunk = np.empty((self.chunk_size, len(ACTION_NAMES)), dtype=np.float32)
        for i in range(self.chunk_size):
            chunk[i] = self.expert.act(self._shadow)
            self._shadow.send_action(dict(zip(ACTION_NAMES, chunk[i].tolist())))
        return chunk

    def reset(self) -> None:
        pass


# ---------------------------------------------------------------------- as a teleoperator
@TeleoperatorConfig.register_subclass("scripted")
@dataclass(kw_only=True)
class ScriptedTeleopConfig(TeleoperatorConfig):
    noise: float = 0.0         # std (rad) of joint-target noise, for diverse demonstrations
    seed: int | None = 0

    def build(self, robot: Any = None) -> "ScriptedTeleop":
        if robot is None:
            raise ValueError("the scripted teleoperator reads the simulated follower's state: "
                             "build it with build(robot=<SimRobot>)")
        return ScriptedTeleop(self, resolve_sim_robot(robot))


class ScriptedTeleop(InProcessDevice, Teleoperator):
    """The scripted expert behind LeRobot's teleoperator interface, bound to one SimRobot (without one,
    as LeRobot's tools build it, to the simulated arm this process built last, found at connect)."""

    name = "scripted"

    def __init__(self, config: ScriptedTeleopConfig, robot: SimRobot | None = None):
        self.config = config
        self.robot = robot
        self.expert = ScriptedExpert(noise=config.noise, seed=config.seed)

    def connect(self, calibrate: bool = True) -> None:
        if self.robot is None:
            self.robot = SimRobot.latest()
        super().connect(calibrate)

    def get_action(self) -> dict[str, float]:
        return self.expert.act_dict(self.robot)
