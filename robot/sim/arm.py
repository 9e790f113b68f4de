"""`SimArm`: the MuJoCo physics of one simulated arm scene, in radians and metres.

Owns the model and data, steps one control period at a time (position targets held constant over
the physics sub-steps, as a servo holds its goal between bus writes), reads privileged state (TCP,
cube, pad contacts), computes forward kinematics on a scratch copy (so FK of a predicted chunk
never disturbs the running simulation) and renders cameras offscreen. Motor units, tasks and the
Robot interface live above it (robot.sim.robot).
"""

from __future__ import annotations

import math
import os
import sys

# Whoever imports mujoco first fixes its GL backend: set it before that happens.
os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported: headless rendering


def _import_mujoco():
    """Import mujoco; if the chosen GL backend breaks the import itself (e.g. MUJOCO_GL=osmesa
    without libOSMesa makes PyOpenGL fail inside mujoco's import), import it again with rendering
    disabled, so that physics and camera-less robots still work. Returns (module, GL error or None)."""
    try:
        import mujoco

        return mujoco, None
    except Exception as e:  # noqa: BLE001 - any backend failure; physics does not need GL
        error = f"{type(e).__name__}: {e}"
        for name in [m for m in sys.modules if m.split(".")[0] in ("mujoco", "OpenGL")]:
            del sys.modules[name]
        os.environ["MUJOCO_GL"] = "disable"
        import mujoco

        return mujoco, error


mujoco, _GL_IMPORT_ERROR = _import_mujoco()
import numpy as np  # noqa: E402

from robot.interface import RobotError  # noqa: E402
from robot.sim.mjcf import ARM_SPECS, MOTORS, ArmSpec, scene_xml  # noqa: E402

CAMERAS = ("front", "wrist")


def _refuse_displayless_glfw() -> None:
    """GLFW without a display does not fail cleanly inside MuJoCo (it can abort the process), so
    refuse before trying, with what to do instead."""
    try:
        from mujoco.rendering.classic import gl_context
    except Exception:  # noqa: BLE001 - no rendering module at all: Renderer() raises clearly below
        return
    backend = getattr(getattr(gl_context, "GLContext", None), "__module__", "")
    if backend == "mujoco.glfw" and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        wanted = os.environ.get("MUJOCO_GL", "").lower()
        why = (f"mujoco was imported before MUJOCO_GL={wanted} was set, so it picked GLFW; "
               if wanted in ("egl", "osmesa") else "MUJOCO_GL selects GLFW; ")
        raise RobotError(
            f"cannot render sim cameras: {why}GLFW needs a display and there is none. Import robot.sim "
            "(or set MUJOCO_GL=egl) before anything imports mujoco, or run the sim camera-less (cameras=[])."
        )


class SimArm:
    """One arm on its table with a cube, a bin and a reach target."""

    def __init__(self, arm: str, control_dt: float = 1 / 30, timestep: float = 0.002):
        if arm not in ARM_SPECS:
            raise ValueError(f"unknown arm {arm!r}; known arms: {', '.join(sorted(ARM_SPECS))}")
        if control_dt <= 0 or timestep <= 0:
            raise ValueError(f"control_dt ({control_dt}) and timestep ({timestep}) must be positive")
        self.spec: ArmSpec = ARM_SPECS[arm]
        # An integer number of sub-steps per control period, the physics step shrunk to fit, so that
        # simulated time advances by exactly one control period per step().
        self.n_substeps = max(1, math.ceil(control_dt / timestep - 1e-9))
        self.model = mujoco.MjModel.from_xml_string(scene_xml(arm, timestep=control_dt / self.n_substeps))
        self.data = mujoco.MjData(self.model)
        self._scratch = mujoco.MjData(self.model)  # for FK / IK, never stepped
        self.control_dt = control_dt

        m = self.model
        self.qpos_idx = np.array([m.joint(n).qposadr[0] for n in MOTORS])
        self.dof_idx = np.array([m.joint(n).dofadr[0] for n in MOTORS])
        self.actuator_idx = np.array([m.actuator(n).id for n in MOTORS])
        self.cube_qpos = m.joint("cube").qposadr[0]
        self.cube_dof = m.joint("cube").dofadr[0]
        self.tcp_site = m.site("tcp").id
        self.cube_geom = m.geom("cube").id
        self.pad_geoms = (m.geom("fixed_pad").id, m.geom("moving_pad").id)
        self.target_mocap = m.body("target").mocapid[0]
        self.joint_low = self.spec.joint_low
        self.joint_high = self.spec.joint_high
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}

    # ------------------------------------------------------------------ state
    def reset(self, joint_pos: np.ndarray, cube_pos: np.ndarray, cube_yaw: float,
              target_pos: np.ndarray | None = None) -> None:
        """Put the arm at `joint_pos` (rad, targets equal, at rest), the cube and the reach target."""
        mujoco.mj_resetData(self.model, self.data)
        q = np.clip(np.asarray(joint_pos, float), self.joint_low, self.joint_high)
        self.data.qpos[self.qpos_idx] = q
        self.data.ctrl[self.actuator_idx] = q
        self.set_cube_pose(cube_pos, cube_yaw)
        # a target below the table is out of sight: tasks without one keep it there
        self.data.mocap_pos[self.target_mocap] = (0.0, 0.0, -1.0) if target_pos is None else target_pos
        mujoco.mj_forward(self.model, self.data)

    def set_cube_pose(self, pos: np.ndarray, yaw: float) -> None:
        a = self.cube_qpos
        self.data.qpos[a:a + 3] = pos
        self.data.qpos[a + 3:a + 7] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        self.data.qvel[self.cube_dof:self.cube_dof + 6] = 0.0

    def set_joint_targets(self, q: np.ndarray) -> np.ndarray:
        """Set the six position-servo goals (rad), clipped to the joint ranges; returns them."""
        q = np.clip(np.asarray(q, float), self.joint_low, self.joint_high)
        self.data.ctrl[self.actuator_idx] = q
        return q

    def step(self) -> None:
        """Advance the physics by one control period."""
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)
        # mj_step leaves positions-derived quantities (site poses, contacts) at the start of its
        # last sub-step; recompute them so every reading matches the present qpos.
        mujoco.mj_forward(self.model, self.data)

    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def joint_targets(self) -> np.ndarray:
        return self.data.ctrl[self.actuator_idx].copy()

    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self.qpos_idx].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self.dof_idx].copy()

    def tcp_position(self) -> np.ndarray:
        return self.data.site_xpos[self.tcp_site].copy()

    def tcp_rotation(self) -> np.ndarray:
        return self.data.site_xmat[self.tcp_site].reshape(3, 3).copy()

    def cube_position(self) -> np.ndarray:
        return self.data.qpos[self.cube_qpos:self.cube_qpos + 3].copy()

    def cube_velocity(self) -> np.ndarray:
        """Linear velocity (m/s, world frame) of the cube's centre."""
        return self.data.qvel[self.cube_dof:self.cube_dof + 3].copy()

    def cube_rotation(self) -> np.ndarray:
        mat = np.empty(9)
        mujoco.mju_quat2Mat(mat, self.data.qpos[self.cube_qpos + 3:self.cube_qpos + 7])
        return mat.reshape(3, 3)

    def cube_yaw(self) -> float:
        """Yaw of the cube folded into [-45°, 45°) (a cube looks the same every quarter turn),
        read from a cube axis other than the one pointing most nearly up, so it stays defined
        when the cube lies on another face."""
        r = self.cube_rotation()
        # the cube axis closest to vertical is its "up"; either other axis gives the yaw
        up = int(np.argmax(np.abs(r[2])))
        side = r[:, (up + 1) % 3]
        yaw = math.atan2(side[1], side[0])
        return (yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4

    def target_position(self) -> np.ndarray:
        return self.data.mocap_pos[self.target_mocap].copy()

    def pad_contacts(self) -> tuple[bool, bool]:
        """Whether the fixed and the moving jaw pad each touch the cube."""
        touching = [False, False]
        for c in self.data.contact[: self.data.ncon]:
            pair = (c.geom1, c.geom2)
            if self.cube_geom in pair:
                other = pair[1] if pair[0] == self.cube_geom else pair[0]
                for i, pad in enumerate(self.pad_geoms):
                    if other == pad:
                        touching[i] = True
        return touching[0], touching[1]

    def is_grasping(self) -> bool:
        """Both pads touch the cube: it is held between the jaws."""
        fixed, moving = self.pad_contacts()
        return fixed and moving

    # ------------------------------------------------------------------ kinematics
    def _scratch_at(self, q: np.ndarray) -> mujoco.MjData:
        d = self._scratch
        d.qpos[self.qpos_idx] = q
        mujoco.mj_kinematics(self.model, d)
        return d

    def fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (3,) and rotation (3, 3) at joint angles q (rad, 6), without touching the sim."""
        d = self._scratch_at(np.asarray(q, float))
        return d.site_xpos[self.tcp_site].copy(), d.site_xmat[self.tcp_site].reshape(3, 3).copy()

    def fk_batch(self, qs: np.ndarray) -> np.ndarray:
        """TCP positions (N, 3) for joint vectors (N, 6) in radians, e.g. a predicted chunk."""
        qs = np.atleast_2d(np.asarray(qs, float))
        return np.stack([self.fk(q)[0] for q in qs])

    def tcp_jacobian(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(position, rotation, Jp, Jr) of the TCP at q; Jacobians are (3, 6) over the arm's joints."""
        d = self._scratch_at(np.asarray(q, float))
        mujoco.mj_comPos(self.model, d)
        jp = np.zeros((3, self.model.nv))
        jr = np.zeros((3, self.model.nv))
        mujoco.mj_jacSite(self.model, d, jp, jr, self.tcp_site)
        pos = d.site_xpos[self.tcp_site].copy()
        rot = d.site_xmat[self.tcp_site].reshape(3, 3).copy()
        return pos, rot, jp[:, self.dof_idx], jr[:, self.dof_idx]

    # ------------------------------------------------------------------ rendering
    def render(self, camera: str, height: int, width: int) -> np.ndarray:
        """One (H, W, 3) uint8 frame from `camera` ("front" | "wrist")."""
        if camera not in CAMERAS:
            raise ValueError(f"unknown camera {camera!r}; known cameras: {', '.join(CAMERAS)}")
        key = (height, width)
        renderer = self._renderers.get(key)
        if renderer is None:
            _refuse_displayless_glfw()
            # the offscreen framebuffer must hold the largest frame asked for
            vis = self.model.vis.global_
            vis.offwidth, vis.offheight = max(vis.offwidth, width), max(vis.offheight, height)
            try:
                renderer = mujoco.Renderer(self.model, height=height, width=width)
            except Exception as e:  # no GL context of any kind on this machine
                cause = f"{e}" if _GL_IMPORT_ERROR is None else f"{_GL_IMPORT_ERROR} (at import); {e}"
                raise RobotError(
                    f"MuJoCo could not create an offscreen renderer (MUJOCO_GL="
                    f"{os.environ.get('MUJOCO_GL')!r}): {cause}. Install EGL (libegl1, Mesa) or OSMesa and set "
                    "MUJOCO_GL=egl or MUJOCO_GL=osmesa before anything imports mujoco, or run the sim "
                    "camera-less (cameras=[])."
                ) from e
            self._renderers[key] = renderer
        renderer.update_scene(self.data, camera=camera)
        return renderer.render().copy()

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()
