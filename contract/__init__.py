"""The contract every chunkbot package agrees on, at the bottom of the import graph.

- `contract.features`: motor names, feature names and policy-frame keys (`observation.state`, ...);
- `contract.arms`: the table of arm types (roles, buses, servo models, units, calibration folders);
- `contract.chunk_policy`: the `ChunkPolicy` protocol the runtime runs;
- `contract.errors`: `RobotError`, the base of every device error.

Pure Python: importing it loads neither numpy, torch nor LeRobot, so anything may import it.
"""

from contract.arms import ARM_TYPES, ArmType, arm_type, real_arm_types
from contract.chunk_policy import ChunkPolicy
from contract.errors import RobotError
from contract.features import (
    ACTION_KEY,
    ACTION_NAMES,
    GRIPPER,
    IMAGE_PREFIX,
    MOTOR_NAMES,
    OBS_MODES,
    STATE_HISTORY_KEY,
    STATE_KEY,
    position_feature,
)

__all__ = [
    "ACTION_KEY",
    "ACTION_NAMES",
    "ARM_TYPES",
    "ArmType",
    "ChunkPolicy",
    "GRIPPER",
    "IMAGE_PREFIX",
    "MOTOR_NAMES",
    "OBS_MODES",
    "RobotError",
    "STATE_HISTORY_KEY",
    "STATE_KEY",
    "arm_type",
    "position_feature",
    "real_arm_types",
]
