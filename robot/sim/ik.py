"""Damped-least-squares inverse kinematics for the TCP of a `SimArm`.

The five body joints (pan, lift, elbow, wrist flex, wrist roll) position the TCP and orient the
jaws; the gripper joint is left alone. A top-down grasp needs exactly five constraints (position,
jaws pointing down, jaw yaw), which is why an orientation target is given as a full rotation and
weighted below position: where the two cannot both be met exactly (TCP slightly off the roll
axis, workspace edge) DLS settles on the nearest compromise instead of blowing up.
"""

from __future__ import annotations

import math

import numpy as np

from robot.sim.arm import SimArm

BODY = slice(0, 5)  # the IK moves joints 0..4, never the gripper


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
    return 0.5 * sum(np.cross(current[:, i], desired[:, i]) for i in range(3))


def solve_ik(arm: SimArm, q_start: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray | None = None,
             *, iterations: int = 40, rot_weight: float = 0.1, damping: float = 0.02,
             max_joint_step: float = 0.2, tol_pos: float = 2e-4) -> tuple[np.ndarray, float]:
    """Joint angles (6, rad) that put the TCP at `target_pos` (and orientation `target_rot`),
    starting from `q_start` (the current joints, so the solution stays on the same branch).

    Returns (q, position error in metres). The gripper angle is copied from `q_start`."""
    q = np.array(q_start, dtype=float)
    target_pos = np.asarray(target_pos, float)
    err_norm = math.inf
    for _ in range(iterations):
        pos, rot, jp, jr = arm.tcp_jacobian(q)
        e_pos = target_pos - pos
        err_norm = float(np.linalg.norm(e_pos))
        if target_rot is None:
            jac, err = jp[:, BODY], e_pos
        else:
            e_rot = rotation_error(rot, target_rot)
            if err_norm < tol_pos and np.linalg.norm(e_rot) < 1e-3:
                break
            jac = np.vstack([jp[:, BODY], rot_weight * jr[:, BODY]])
            err = np.concatenate([e_pos, rot_weight * e_rot])
        if target_rot is None and err_norm < tol_pos:
            break
        # dq = J^T (J J^T + λ² I)^-1 e : well-behaved near singularities and at the workspace edge
        jjt = jac @ jac.T + (damping**2) * np.eye(jac.shape[0])
        dq = jac.T @ np.linalg.solve(jjt, err)
        scale = max(1.0, float(np.max(np.abs(dq))) / max_joint_step)
        q[BODY] = np.clip(q[BODY] + dq / scale, arm.joint_low[BODY], arm.joint_high[BODY])
    pos, _ = arm.fk(q)
    return q, float(np.linalg.norm(target_pos - pos))
