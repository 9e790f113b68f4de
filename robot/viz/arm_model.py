"""The kinematic model the view draws an arm with: the sim MJCF of the same arm type, posed by joints.

A simulated arm and a real one are drawn the same way: joint positions in robot units (LeRobot's
degrees or [-100, 100], gripper [0, 100]) are converted to radians with the sim's unit mapping
(`robot.sim.units.JointUnits`), put into a private `MjData` of the arm's scene and run through
`mj_kinematics`. So the drawing never touches a running simulation (thread-safe: it lives in the
view's logging thread), and a real Koch / SO arm is drawn as its sim twin driven by the measured
joints. For a real arm the pose is as good as the match between its calibration and the sim's
zero (LeRobot's mid-range calibration pose); SO-100 is drawn with the SO-101 model (same chain
within millimetres, per shared/facts/arms.md).

What it gives the view:
- `geometry()`: every geom of the scene once, grouped by the body it is fixed to, in that body's
  frame (boxes, capsules, cylinders, spheres), for static logging;
- `body_poses(joints)`: world position and xyzw quaternion of each arm body at `joints`;
- `tcp(joints)` / `tcp_path(chunk)`: the tool centre point, for chunks drawn as end-effector paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")  # robot.sim.arm does the same before importing mujoco


def arm_type_for(robot_name: str) -> str | None:
    """Which sim model draws a robot: "koch" / "so101" from names such as sim_koch, koch_follower,
    so100_follower, so101_follower; None for robots the view has no model of (drawn without an arm)."""
    name = robot_name.lower()
    if "koch" in name:
        return "koch"
    if "so100" in name or "so101" in name or "so_" in name:
        return "so101"
    return None


@dataclass(frozen=True)
class BodyGeometry:
    """The geoms fixed to one body, in that body's frame, by shape."""

    body: str
    boxes: dict[str, np.ndarray]      # centers (n,3), half_sizes (n,3), quaternions (n,4) xyzw, colors (n,4) uint8
    capsules: dict[str, np.ndarray]   # translations (n,3) (a cap centre), lengths, radii (n,), quaternions, colors
    cylinders: dict[str, np.ndarray]  # centers, lengths, radii, quaternions, colors
    spheres: dict[str, np.ndarray]    # centers, radii, colors


def _xyzw(wxyz: np.ndarray) -> np.ndarray:
    wxyz = np.asarray(wxyz, dtype=np.float64)
    return np.concatenate([wxyz[..., 1:], wxyz[..., :1]], axis=-1)


def _rotate(wxyz: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vector v by the unit quaternion wxyz."""
    w, x, y, z = wxyz
    q = np.array([x, y, z])
    t = 2.0 * np.cross(q, v)
    return v + w * t + np.cross(q, t)


class ArmModel:
    """Forward kinematics and geometry of one arm type's sim scene, in robot units."""

    def __init__(self, arm: str, use_degrees: bool | None = None):
        import mujoco

        from robot.sim.mjcf import ARM_SPECS, MOTORS, scene_xml
        from robot.sim.units import JointUnits

        if arm not in ARM_SPECS:
            raise ValueError(f"unknown arm {arm!r}; the view can draw {', '.join(sorted(ARM_SPECS))}")
        self._mj = mujoco
        spec = ARM_SPECS[arm]
        self.arm = arm
        self.use_degrees = spec.use_degrees_default if use_degrees is None else bool(use_degrees)
        self.units = JointUnits(low=spec.joint_low, high=spec.joint_high, gripper_closed=spec.gripper_closed,
                                gripper_open=spec.gripper_open, use_degrees=self.use_degrees)
        self.model = m = mujoco.MjModel.from_xml_string(scene_xml(arm))
        self.data = mujoco.MjData(m)
        self._qpos_idx = np.array([m.joint(n).qposadr[0] for n in MOTORS])
        self._tcp_site = m.site("tcp").id
        # The arm is the body tree rooted at "base"; the cube (free joint) and the mocap target are
        # posed from the observation by the view; everything else (table, bin) never moves.
        base_root = m.body_rootid[m.body("base").id]
        self.arm_bodies = [b for b in range(m.nbody) if b != 0 and m.body_rootid[b] == base_root]
        self.body_names = [m.body(b).name for b in self.arm_bodies]
        self.cube_body = m.body("cube").id
        self.target_body = m.body("target").id
        mujoco.mj_kinematics(m, self.data)  # static bodies (bin) at their world poses

    # ------------------------------------------------------------------ kinematics
    def _pose(self, joints: np.ndarray) -> None:
        self.data.qpos[self._qpos_idx] = self.units.to_radians(np.asarray(joints, dtype=np.float64)[:6])
        self._mj.mj_kinematics(self.model, self.data)

    def body_poses(self, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World positions (B, 3) and xyzw quaternions (B, 4) of `arm_bodies` at `joints` (robot units)."""
        pos, quat, _ = self.pose(joints)
        return pos, quat

    def pose(self, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`body_poses` and the TCP from one forward-kinematics pass."""
        self._pose(joints)
        return (self.data.xpos[self.arm_bodies].copy(), _xyzw(self.data.xquat[self.arm_bodies]),
                self.data.site_xpos[self._tcp_site].copy())

    def tcp(self, joints: np.ndarray) -> np.ndarray:
        """Tool centre point (3,) in metres at `joints` (robot units)."""
        self._pose(joints)
        return self.data.site_xpos[self._tcp_site].copy()

    def tcp_path(self, chunk: np.ndarray) -> np.ndarray:
        """TCP positions (N, 3) along N joint vectors, e.g. an (h, 6) predicted chunk."""
        chunk = np.atleast_2d(np.asarray(chunk, dtype=np.float64))
        return np.stack([self.tcp(q) for q in chunk])

    # ------------------------------------------------------------------ geometry
    def static_body_pose(self, body: int) -> tuple[np.ndarray, np.ndarray]:
        """World pose (position, xyzw) of a body that never moves (the world, the bin)."""
        return self.data.xpos[body].copy(), _xyzw(self.data.xquat[body])

    def geometry(self, body: int) -> BodyGeometry:
        """The visible geoms of `body` in its own frame."""
        mj, m = self._mj, self.model
        shapes: dict[str, list[dict[str, np.ndarray]]] = {"box": [], "capsule": [], "cylinder": [], "sphere": []}
        for g in range(m.ngeom):
            if m.geom_bodyid[g] != body or m.geom_rgba[g][3] == 0:
                continue
            pos, quat, size = m.geom_pos[g].copy(), m.geom_quat[g].copy(), m.geom_size[g]
            color = np.round(np.clip(m.geom_rgba[g], 0, 1) * 255).astype(np.uint8)
            t = m.geom_type[g]
            if t == mj.mjtGeom.mjGEOM_BOX:
                shapes["box"].append(dict(centers=pos, half_sizes=size[:3].copy(), quaternions=_xyzw(quat),
                                          colors=color))
            elif t == mj.mjtGeom.mjGEOM_CAPSULE:
                # MuJoCo: centred on pos, half-length size[1] along the geom's z; Rerun: from the
                # origin along +z for `length`, so start at the lower cap's centre.
                start = pos - _rotate(quat, np.array([0.0, 0.0, size[1]]))
                shapes["capsule"].append(dict(translations=start, lengths=np.float64(2 * size[1]),
                                              radii=np.float64(size[0]), quaternions=_xyzw(quat), colors=color))
            elif t == mj.mjtGeom.mjGEOM_CYLINDER:
                shapes["cylinder"].append(dict(centers=pos, lengths=np.float64(2 * size[1]), radii=np.float64(size[0]),
                                               quaternions=_xyzw(quat), colors=color))
            elif t == mj.mjtGeom.mjGEOM_SPHERE:
                shapes["sphere"].append(dict(centers=pos, radii=np.float64(size[0]), colors=color))
            # planes, meshes, height fields: none in our scenes

        def stack(items: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
            return {k: np.stack([it[k] for it in items]) for k in items[0]} if items else {}

        return BodyGeometry(m.body(body).name, stack(shapes["box"]), stack(shapes["capsule"]),
                            stack(shapes["cylinder"]), stack(shapes["sphere"]))

    @property
    def static_bodies(self) -> list[int]:
        """Bodies drawn once at their reset pose: the world (table) and fixed props (the bin)."""
        m = self.model
        moving = set(self.arm_bodies) | {self.cube_body, self.target_body}
        return [b for b in range(m.nbody) if b not in moving and m.body_dofnum[b] == 0
                and (b == 0 or m.body_rootid[b] == b)]
