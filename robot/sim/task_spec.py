"""What each simulated task places, observes and scores: reach, lift, pick-and-place.

A task is a small object over a `SimArm`: it samples the episode's start (cube pose, reach
target), names and computes its extra state features (metres / radians, appended to the joint
features by the robot), and judges success (the sparse reward) and a shaped dense reward in [0, 1].
The robot (robot.sim.robot) and the gymnasium envs (robot.sim.tasks) share these, so "success"
means the same thing in a dataset, in the env and on the Rerun view.
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import numpy as np

from robot.sim.arm import SimArm
from robot.sim.mjcf import CUBE_HALF

LIFT_HEIGHT = 0.05          # lift: cube raised this far above its resting height
REACH_TOLERANCE = 0.02      # reach: TCP within this distance of the target
SETTLED_SPEED = 0.05        # pick_place: the cube counts as placed once slower than this (m/s)


def _sample_in_front(arm: SimArm, rng: np.random.Generator, radius: tuple[float, float]) -> np.ndarray:
    """A point on the table at `radius` from the pan axis, within the spawn sector in front of the arm."""
    r = rng.uniform(*radius)
    a = rng.uniform(-arm.spec.cube_spawn_half_angle, arm.spec.cube_spawn_half_angle)
    px, py = arm.spec.pan_axis_xy
    return np.array([px + r * math.cos(a), py + r * math.sin(a)])


class SimTask(abc.ABC):
    name: ClassVar[str]
    max_episode_steps: ClassVar[int]       # the TimeLimit the registered env uses (30 Hz steps)
    # tools.train's episode length on this task (None: max_episode_steps). Shorter training episodes give
    # more starts per step budget where the expert needs far fewer steps than the limit.
    train_episode_steps: ClassVar[int | None] = None
    feature_names: ClassVar[tuple[str, ...]]

    @abc.abstractmethod
    def sample_start(self, arm: SimArm, rng: np.random.Generator) -> tuple[np.ndarray, float, np.ndarray | None]:
        """(cube position, cube yaw, reach target or None) for a new episode."""

    @abc.abstractmethod
    def is_success(self, arm: SimArm) -> bool: ...

    @abc.abstractmethod
    def dense_reward(self, arm: SimArm) -> float:
        """Shaped progress in [0, 1]; 1 exactly when the task succeeded."""

    def features(self, arm: SimArm) -> np.ndarray:
        tcp = arm.tcp_position()
        cube = arm.cube_position()
        values = {
            "tcp.x": tcp[0], "tcp.y": tcp[1], "tcp.z": tcp[2],
            "cube.x": cube[0], "cube.y": cube[1], "cube.z": cube[2],
        }
        if "cube.yaw" in self.feature_names:
            values["cube.yaw"] = arm.cube_yaw()
        if "target.x" in self.feature_names:
            t = arm.target_position()
            values.update({"target.x": t[0], "target.y": t[1], "target.z": t[2]})
        return np.array([values[n] for n in self.feature_names])

    def _sample_cube(self, arm: SimArm, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        xy = _sample_in_front(arm, rng, arm.spec.cube_spawn_radius)
        # any yaw: a cube repeats every quarter turn, so [-45°, 45°) covers them all
        yaw = rng.uniform(-math.pi / 4, math.pi / 4)
        return np.array([xy[0], xy[1], CUBE_HALF]), yaw

    @staticmethod
    def _approach_score(arm: SimArm) -> float:
        return 1.0 - math.tanh(10.0 * float(np.linalg.norm(arm.tcp_position() - arm.cube_position())))


class ReachTask(SimTask):
    """Bring the TCP within 2 cm of a random target point (no cube involved)."""

    name = "reach"
    max_episode_steps = 100
    feature_names = ("tcp.x", "tcp.y", "tcp.z", "target.x", "target.y", "target.z")

    def sample_start(self, arm, rng):
        xy = _sample_in_front(arm, rng, arm.spec.reach_radius)
        target = np.array([xy[0], xy[1], rng.uniform(*arm.spec.reach_height)])
        # the cube is parked out of the way, off to the far side of the bin
        bx, by = arm.spec.bin_center_xy
        cube = np.array([bx, by - (arm.spec.bin_inner_half + 0.05), CUBE_HALF])
        return cube, 0.0, target

    def _distance(self, arm: SimArm) -> float:
        return float(np.linalg.norm(arm.tcp_position() - arm.target_position()))

    def is_success(self, arm):
        return self._distance(arm) < REACH_TOLERANCE

    def dense_reward(self, arm):
        if self.is_success(arm):
            return 1.0
        return 0.9 * (1.0 - math.tanh(10.0 * self._distance(arm)))


class LiftTask(SimTask):
    """Grasp the cube and hold it at least 5 cm above the table."""

    name = "lift"
    max_episode_steps = 150
    train_episode_steps = 60   # the scripted expert lifts in about 30 steps
    feature_names = ("tcp.x", "tcp.y", "tcp.z", "cube.x", "cube.y", "cube.z", "cube.yaw")

    def sample_start(self, arm, rng):
        cube, yaw = self._sample_cube(arm, rng)
        return cube, yaw, None

    def is_success(self, arm):
        return arm.cube_position()[2] >= CUBE_HALF + LIFT_HEIGHT and arm.is_grasping()

    def dense_reward(self, arm):
        if self.is_success(arm):
            return 1.0
        grasping = arm.is_grasping()
        height = float(np.clip((arm.cube_position()[2] - CUBE_HALF) / LIFT_HEIGHT, 0.0, 1.0))
        return 0.25 * self._approach_score(arm) + 0.25 * grasping + 0.45 * grasping * height


class PickPlaceTask(SimTask):
    """Pick the cube up and leave it (released) inside the bin."""

    name = "pick_place"
    max_episode_steps = 300
    train_episode_steps = 120  # the scripted expert places in 46-72 steps
    feature_names = ("tcp.x", "tcp.y", "tcp.z", "cube.x", "cube.y", "cube.z", "cube.yaw")

    def sample_start(self, arm, rng):
        cube, yaw = self._sample_cube(arm, rng)
        return cube, yaw, None

    def cube_in_bin(self, arm: SimArm) -> bool:
        cube = arm.cube_position()
        offset = np.abs(cube[:2] - np.asarray(arm.spec.bin_center_xy))
        settled = float(np.linalg.norm(arm.cube_velocity())) < SETTLED_SPEED  # landed, not still falling
        return bool(np.all(offset < arm.spec.bin_inner_half) and cube[2] < arm.spec.bin_wall_height and settled)

    def is_success(self, arm):
        fixed, moving = arm.pad_contacts()
        return self.cube_in_bin(arm) and not (fixed or moving)

    def dense_reward(self, arm):
        if self.is_success(arm):
            return 1.0
        cube = arm.cube_position()
        bin_xy = np.asarray(arm.spec.bin_center_xy)
        # A cube over the bin's footprint keeps the grasp and carry credit after it is let go,
        # so the reward does not dip between the release and the cube settling (the success).
        over_bin = bool(np.all(np.abs(cube[:2] - bin_xy) < arm.spec.bin_inner_half))
        grasping = 1.0 if over_bin else float(arm.is_grasping())
        lifted = float(np.clip((cube[2] - CUBE_HALF) / LIFT_HEIGHT, 0.0, 1.0))
        carried = 1.0 if over_bin else grasping * lifted
        to_bin = float(np.linalg.norm(cube[:2] - bin_xy))
        return (0.15 * self._approach_score(arm) + 0.15 * grasping + 0.2 * carried
                + 0.4 * carried * (1.0 - math.tanh(5.0 * to_bin)) + 0.05 * self.cube_in_bin(arm))


TASKS: dict[str, type[SimTask]] = {t.name: t for t in (ReachTask, LiftTask, PickPlaceTask)}


def make_task(name: str) -> SimTask:
    if name not in TASKS:
        raise ValueError(f"unknown sim task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]()
