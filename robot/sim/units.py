"""Joint angles (radians, MuJoCo) <-> LeRobot's motor units, the way LeRobot normalises servo counts.

LeRobot reports body joints either in degrees about the calibrated mid-range (`use_degrees=True`,
the SO default) or in [-100, 100] over the calibrated range (`RANGE_M100_100`, the Koch default),
and the gripper in [0, 100] with 0 = closed and 100 = open (`RANGE_0_100`). In simulation the joint
zero is the mid-range calibration pose, so degrees are simply the joint angle in degrees, and the
calibrated range is the model's joint range. A gripper whose joint closes towards larger angles
(Koch) maps with a negative scale, as LeRobot's drive_mode does for an inverted motor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class JointUnits:
    low: np.ndarray          # (6,) radians, joint range lower bounds (gripper: sorted range)
    high: np.ndarray         # (6,) radians
    gripper_closed: float    # radians
    gripper_open: float      # radians
    use_degrees: bool

    def _body_scale(self) -> np.ndarray:
        # units per radian for the five body joints
        if self.use_degrees:
            return np.full(5, 180.0 / np.pi)
        return 200.0 / (self.high[:5] - self.low[:5])

    def _gripper_scale(self) -> float:
        return 100.0 / (self.gripper_open - self.gripper_closed)

    def to_units(self, q: np.ndarray) -> np.ndarray:
        """Joint angles (rad) -> motor units."""
        q = np.asarray(q, dtype=np.float64)
        out = np.empty(6)
        if self.use_degrees:
            out[:5] = np.degrees(q[:5])
        else:
            out[:5] = (q[:5] - self.low[:5]) * self._body_scale() - 100.0
        out[5] = (q[5] - self.gripper_closed) * self._gripper_scale()
        return out

    def to_radians(self, u: np.ndarray) -> np.ndarray:
        """Motor units -> joint angles (rad)."""
        u = np.asarray(u, dtype=np.float64)
        out = np.empty(6)
        if self.use_degrees:
            out[:5] = np.radians(u[:5])
        else:
            out[:5] = (u[:5] + 100.0) / self._body_scale() + self.low[:5]
        out[5] = u[5] / self._gripper_scale() + self.gripper_closed
        return out

    def velocity_to_units(self, qdot: np.ndarray) -> np.ndarray:
        """Joint velocities (rad/s) -> motor units per second (same scale as positions)."""
        qdot = np.asarray(qdot, dtype=np.float64)
        return np.concatenate([qdot[:5] * self._body_scale(), [qdot[5] * self._gripper_scale()]])

    @property
    def unit_low(self) -> np.ndarray:
        """Lower bound of every joint in motor units (what send_action clips to)."""
        return np.minimum(self.to_units(self.low), self.to_units(self.high))

    @property
    def unit_high(self) -> np.ndarray:
        return np.maximum(self.to_units(self.low), self.to_units(self.high))
