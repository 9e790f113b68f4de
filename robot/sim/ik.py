"""Damped-least-squares inverse kinematics for the TCP of a `SimArm`.

The five body joints (pan, lift, elbow, wrist flex, wrist roll) position the TCP and orient the
jaws; the gripper joint is left alone. A top-down grasp needs exactly five constraints (position,
jaws pointing down, jaw yaw), so an orientation target is given as a full rotation and pursued
in the null space of the position task: where both cannot be met (TCP slightly off the roll axis,
workspace edge, joint limits) the position wins and the orientation settles on the nearest
compromise instead of dragging the TCP off target.
"""

from __future__ import annotations

import math

import numpy as np

from robot.sim.arm import SimArm

BODY = slice(0, 5)  # the IK moves joints 0..4, never the gripper
POSITION_ONLY_ITERATIONS = 3
MAX_ROT_STEP = 0.3  # rad of orientation error pursued per iteration


def top_down_rotation(arm: SimArm, yaw: float) -> np.ndarray:
    """TCP-site rotation (3, 3) with the jaws pointing straight down and closing along
    the horizontal direction `yaw` (radians from world +x)."""
    a = np.asarray(arm.spec.approach_axis, float)
    j = np.asarray(arm.spec.jaw_axis, float)
    site_axes = np.stack([a, j, np.cross(a, j)], axis=1)
    a_w = np.array([0.0, 0.0, -1.0])
    j_w = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    world_axes = np.stack([a_w, j_w, np.cross(a_w, j_w)], axis=1)
    return world_axes @ site_axes.T


def rotation_error(current: np.ndarray, desired: np.ndarray) -> np.ndarray:
    """Small-angle rotation vector (world frame) taking `current` towards `desired`."""
    c, d = current, desired
    # 0.5 * sum_i c_i x d_i over the three frame axes (columns), written out: np.cross is slow for 3-vectors
    return 0.5 * np.array([
        (c[1] * d[2] - c[2] * d[1]).sum(),
        (c[2] * d[0] - c[0] * d[2]).sum(),
        (c[0] * d[1] - c[1] * d[0]).sum(),
    ])


def _dls_pinv(jac: np.ndarray, damping: float) -> np.ndarray:
    """Damped pseudo-inverse J^T (J J^T + λ² I)^-1: well-behaved near singularities."""
    return jac.T @ np.linalg.inv(jac @ jac.T + (damping**2) * np.eye(jac.shape[0]))


def _prioritised_step(jp: np.ndarray, jr: np.ndarray, e_pos: np.ndarray, e_rot: np.ndarray | None,
                      damping: float) -> np.ndarray:
    """Joint step for the position task, plus the orientation task in its null space."""
    jp_pinv = _dls_pinv(jp, damping)
    dq = jp_pinv @ e_pos
    if e_rot is not None:
        null = np.eye(jp.shape[1]) - jp_pinv @ jp
        dq = dq + null @ (_dls_pinv(jr @ null, 0.05) @ (e_rot - jr @ dq))
    return dq


def solve_ik(arm: SimArm, q_start: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray | None = None,
             *, iterations: int = 40, damping: float = 0.01, max_joint_step: float = 0.2,
             tol_pos: float = 2e-4) -> tuple[np.ndarray, float]:
    """Joint angles (6, rad) that put the TCP at `target_pos` and, as far as the remaining
    freedom allows, at orientation `target_rot`, starting from `q_start` (the present joints, so
    the solution stays on the same branch and close to where the arm is).

    Position has priority: the orientation step lives in the null space of the position task, so
    where jaws-down cannot be met (high up, far out, wrist at its limit) the jaws tilt and the TCP
    still goes where it was asked. Returns (q, position error in metres); the gripper angle is
    copied from `q_start`."""
    q = np.array(q_start, dtype=float)
    target_pos = np.asarray(target_pos, float)
    low, high = arm.joint_low[BODY], arm.joint_high[BODY]
    for it in range(iterations):
        pos, rot, jp, jr = arm.tcp_jacobian(q)
        e_pos = target_pos - pos
        e_rot = np.zeros(3) if target_rot is None else rotation_error(rot, target_rot)
        if np.linalg.norm(e_pos) < tol_pos and (target_rot is None or np.linalg.norm(e_rot) < 1e-3):
            break
        # The null-space orientation step is only first-order neutral for the position, and an
        # unreachable orientation keeps pulling; the last iterations therefore refine the position
        # alone, so the TCP lands where asked whenever that point is reachable.
        use_rot = target_rot is not None and it < iterations - POSITION_ONLY_ITERATIONS
        rot_norm = float(np.linalg.norm(e_rot))
        if rot_norm > MAX_ROT_STEP:
            e_rot = e_rot * (MAX_ROT_STEP / rot_norm)
        # A joint pinned at its limit that the step would push further out is taken out of the
        # problem (its column zeroed) and the step recomputed, so the other joints take over
        # instead of the solver stalling against the limit.
        free = np.ones(5, dtype=bool)
        for _pass in range(3):
            dq = _prioritised_step(jp[:, BODY] * free, jr[:, BODY] * free, e_pos,
                                   e_rot if use_rot else None, damping)
            pinned = ((q[BODY] <= low + 1e-6) & (dq < 0)) | ((q[BODY] >= high - 1e-6) & (dq > 0))
            if not np.any(pinned & free):
                break
            free &= ~pinned
        scale = max(1.0, float(np.max(np.abs(dq))) / max_joint_step)
        q[BODY] = np.clip(q[BODY] + dq / scale, low, high)
    pos, _ = arm.fk(q)
    return q, float(np.linalg.norm(target_pos - pos))
