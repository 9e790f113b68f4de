"""Domain randomisation of a sim arm scene, re-drawn at every reset (off unless asked for).

What varies is what a policy meant for a real arm should not depend on: the cube's mass, friction
and colour, the lights' brightness, the table's tint, the front camera's pose and field of view,
and each servo's stiffness and the joints' damping. Every draw starts from the nominal model
values (saved once), so ranges never compound over episodes, and all draws come from the robot's
seeded generator, so `reset(seed)` reproduces a randomised episode exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from robot.sim.arm import SimArm


@dataclass(frozen=True)
class RandomizationRanges:
    cube_mass_scale: tuple[float, float] = (0.5, 1.5)
    cube_friction: tuple[float, float] = (0.6, 1.2)
    light_scale: tuple[float, float] = (0.6, 1.2)
    table_tint: tuple[float, float] = (0.8, 1.1)       # per channel multiplier of the table colour
    camera_offset: float = 0.015                        # m, per axis, on the front camera position
    camera_fovy: float = 3.0                            # degrees either way on the front camera
    servo_gain_scale: tuple[float, float] = (0.8, 1.2)  # kp (and the matching position bias)
    damping_scale: tuple[float, float] = (0.8, 1.2)


class SceneRandomizer:
    """Draws one variation of `arm`'s scene per `apply(rng)`."""

    def __init__(self, arm: SimArm, ranges: RandomizationRanges | None = None):
        self.arm = arm
        self.ranges = ranges or RandomizationRanges()
        m = arm.model
        self._cube_body = m.body("cube").id
        self._table_geom = m.geom("table").id
        self._front_cam = m.camera("front").id
        self._nominal = {
            "cube_mass": float(m.body_mass[self._cube_body]),
            "cube_inertia": m.body_inertia[self._cube_body].copy(),
            "cube_friction": m.geom_friction[arm.cube_geom].copy(),
            "cube_rgba": m.geom_rgba[arm.cube_geom].copy(),
            "light_diffuse": m.light_diffuse.copy(),
            "table_rgba": m.geom_rgba[self._table_geom].copy(),
            "cam_pos": m.cam_pos[self._front_cam].copy(),
            "cam_fovy": float(m.cam_fovy[self._front_cam]),
            "gainprm": m.actuator_gainprm[arm.actuator_idx, 0].copy(),
            "biasprm": m.actuator_biasprm[arm.actuator_idx, 1].copy(),
            "damping": m.dof_damping[arm.dof_idx].copy(),
        }

    def apply(self, rng: np.random.Generator) -> None:
        m, r, n, a = self.arm.model, self.ranges, self._nominal, self.arm
        mass_scale = rng.uniform(*r.cube_mass_scale)
        m.body_mass[self._cube_body] = n["cube_mass"] * mass_scale
        m.body_inertia[self._cube_body] = n["cube_inertia"] * mass_scale
        m.geom_friction[a.cube_geom] = n["cube_friction"]
        m.geom_friction[a.cube_geom, 0] = rng.uniform(*r.cube_friction)
        # a saturated, mostly reddish-to-orange cube with some brightness change
        m.geom_rgba[a.cube_geom, :3] = np.clip(n["cube_rgba"][:3] * rng.uniform(0.6, 1.1)
                                                + rng.uniform(0.0, 0.35, 3), 0.0, 1.0)
        m.light_diffuse[:] = n["light_diffuse"] * rng.uniform(*r.light_scale)
        m.geom_rgba[self._table_geom, :3] = np.clip(n["table_rgba"][:3] * rng.uniform(*r.table_tint, 3), 0, 1)
        m.cam_pos[self._front_cam] = n["cam_pos"] + rng.uniform(-r.camera_offset, r.camera_offset, 3)
        m.cam_fovy[self._front_cam] = n["cam_fovy"] + rng.uniform(-r.camera_fovy, r.camera_fovy)
        # a MuJoCo position servo is gain kp on ctrl and bias -kp on qpos: scale both together
        gain = n["gainprm"] * rng.uniform(*r.servo_gain_scale, len(n["gainprm"]))
        m.actuator_gainprm[a.actuator_idx, 0] = gain
        m.actuator_biasprm[a.actuator_idx, 1] = -gain
        m.dof_damping[a.dof_idx] = n["damping"] * rng.uniform(*r.damping_scale, len(n["damping"]))
        mujoco.mj_setConst(m, a.data)  # refresh quantities derived from masses

    def restore(self) -> None:
        """Back to the nominal scene."""
        m, n, a = self.arm.model, self._nominal, self.arm
        m.body_mass[self._cube_body] = n["cube_mass"]
        m.body_inertia[self._cube_body] = n["cube_inertia"]
        m.geom_friction[a.cube_geom] = n["cube_friction"]
        m.geom_rgba[a.cube_geom] = n["cube_rgba"]
        m.light_diffuse[:] = n["light_diffuse"]
        m.geom_rgba[self._table_geom] = n["table_rgba"]
        m.cam_pos[self._front_cam] = n["cam_pos"]
        m.cam_fovy[self._front_cam] = n["cam_fovy"]
        m.actuator_gainprm[a.actuator_idx, 0] = n["gainprm"]
        m.actuator_biasprm[a.actuator_idx, 1] = n["biasprm"]
        m.dof_damping[a.dof_idx] = n["damping"]
        mujoco.mj_setConst(m, a.data)
