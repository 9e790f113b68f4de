"""Forward kinematics of an arm as a torch module: joint readings in the robot's units -> the TCP (the
point between the jaws where a grasped cube sits) in metres, in the arm's base frame.

    fk = ForwardKinematics.from_sim_arm("so101")       # reads the chain off the sim arm's MuJoCo model once
    tcp = fk(state)                                      # (B, 6) joint units -> (B, 3) metres

The chain (each joint's fixed transform from its parent, its axis, which state column drives it and how
that column's units map to radians, and the TCP's offset from the last joint) is held in buffers, so it
is saved with a model's weights and exported to ONNX with it; running it needs only sin, cos and matmul
(no MuJoCo). MuJoCo is imported only by `from_sim_arm`, when a model is first built for training.

The sim's joint zero is the calibration mid-range (`robot.sim.units`), so the chain read off the sim arm
also gives the TCP of a real arm of the same kind, in the same units (so101: degrees; koch: [-100, 100]
over the calibrated range, LeRobot's defaults).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from contract import MOTOR_NAMES

# the joints between the base and the TCP: the body joints; the gripper moves only the moving jaw
CHAIN_JOINTS = MOTOR_NAMES[:5]


def _homogeneous(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = translation
    return out


def _quat_matrix(quat: np.ndarray) -> np.ndarray:
    """MuJoCo's (w, x, y, z) unit quaternion -> 3x3 rotation."""
    w, x, y, z = np.asarray(quat, float) / np.linalg.norm(quat)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


class ForwardKinematics(nn.Module):
    """(B, D) joint readings in robot units -> (B, 3) TCP position in metres. Built empty (the buffers a
    saved model's weights fill) or from a sim arm (`from_sim_arm`)."""

    def __init__(self, num_joints: int = len(CHAIN_JOINTS)) -> None:
        super().__init__()
        # fixed[i]: parent frame -> joint i's frame at zero angle; fixed[num_joints]: last joint -> TCP
        self.register_buffer("fixed", torch.eye(4).repeat(num_joints + 1, 1, 1))
        self.register_buffer("axis", torch.zeros(num_joints, 3))                 # unit axis in joint i's frame
        self.register_buffer("state_column", torch.zeros(num_joints, dtype=torch.long))
        # radians = units * unit_scale + unit_offset (affine for degrees and for [-100, 100] alike)
        self.register_buffer("unit_scale", torch.ones(num_joints))
        self.register_buffer("unit_offset", torch.zeros(num_joints))

    @classmethod
    def from_sim_arm(cls, arm: str, use_degrees: bool | None = None) -> "ForwardKinematics":
        """The chain base -> TCP of the sim arm `arm` ("so101" | "koch"), read from its MuJoCo model, for
        joints in degrees (`use_degrees`) or [-100, 100]; None: the arm's LeRobot default."""
        from robot.sim.arm import SimArm
        from robot.sim.units import JointUnits

        sim = SimArm(arm)
        m, spec = sim.model, sim.spec
        bodies = []
        body = int(m.site_bodyid[sim.tcp_site])
        while body != 0:                      # up to the world body
            bodies.append(body)
            body = int(m.body_parentid[body])
        fixed, axes, joints = [], [], []
        frame = np.eye(4)                     # accumulated fixed transform since the last joint
        for body in reversed(bodies):
            frame = frame @ _homogeneous(_quat_matrix(m.body_quat[body]), m.body_pos[body])
            for j in range(m.body_jntadr[body], m.body_jntadr[body] + m.body_jntnum[body]):
                if m.jnt_type[j] != 3:        # mjJNT_HINGE
                    raise ValueError(f"the {arm} chain to the TCP has a non-hinge joint {m.joint(j).name!r}")
                anchor = m.jnt_pos[j]
                # a hinge turns about an axis through its anchor: move to the anchor, turn, move back
                fixed.append(frame @ _homogeneous(np.eye(3), anchor))
                axes.append(m.jnt_axis[j] / np.linalg.norm(m.jnt_axis[j]))
                joints.append(m.joint(j).name)
                frame = _homogeneous(np.eye(3), -anchor)
        fixed.append(frame @ _homogeneous(np.eye(3), m.site_pos[sim.tcp_site]))
        sim.close()
        if tuple(joints) != CHAIN_JOINTS:
            raise ValueError(f"the {arm} chain to the TCP runs through {joints}, not the body joints {CHAIN_JOINTS}")
        degrees = spec.use_degrees_default if use_degrees is None else use_degrees
        units = JointUnits(low=spec.joint_low, high=spec.joint_high, gripper_closed=spec.gripper_closed,
                           gripper_open=spec.gripper_open, use_degrees=degrees)
        offset = units.to_radians(np.zeros(len(MOTOR_NAMES)))
        scale = units.to_radians(np.ones(len(MOTOR_NAMES))) - offset
        columns = [MOTOR_NAMES.index(n) for n in joints]
        out = cls(len(joints))
        out.fixed.copy_(torch.as_tensor(np.stack(fixed), dtype=torch.float32))
        out.axis.copy_(torch.as_tensor(np.stack(axes), dtype=torch.float32))
        out.state_column.copy_(torch.as_tensor(columns))
        out.unit_scale.copy_(torch.as_tensor(scale[columns], dtype=torch.float32))
        out.unit_offset.copy_(torch.as_tensor(offset[columns], dtype=torch.float32))
        return out

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        q = state.float().index_select(-1, self.state_column) * self.unit_scale + self.unit_offset   # (B, N) rad
        batch = q.shape[0]
        eye = torch.eye(3, dtype=q.dtype, device=q.device)
        pose = self.fixed[0].expand(batch, 4, 4)
        for i in range(self.axis.shape[0]):
            # Rodrigues: R = I + sin(q) K + (1 - cos(q)) K^2, K the axis' cross-product matrix
            x, y, z = self.axis[i]
            zero = torch.zeros((), dtype=q.dtype, device=q.device)
            k = torch.stack([torch.stack([zero, -z, y]), torch.stack([z, zero, -x]), torch.stack([-y, x, zero])])
            s, c = torch.sin(q[:, i]).view(-1, 1, 1), torch.cos(q[:, i]).view(-1, 1, 1)
            rotation = eye + s * k + (1 - c) * (k @ k)                                          # (B, 3, 3)
            turn = torch.cat([torch.cat([rotation, torch.zeros(batch, 3, 1, dtype=q.dtype, device=q.device)], 2),
                              torch.eye(4, dtype=q.dtype, device=q.device)[3:].expand(batch, 1, 4)], 1)
            pose = pose @ turn @ self.fixed[i + 1]
        return pose[:, :3, 3]
