"""Robots (real arms through LeRobot, simulated MuJoCo arms) and what runs them."""

from robot.config import RobotConfig, TeleoperatorConfig, make_robot, make_teleoperator, robot_config_for
from robot.executor import ChunkExecutor, ExecutionConfig
from robot.interface import ACTION_NAMES, MOTOR_NAMES, Robot, RobotError, Teleoperator
from robot.safety import BusFaultError, SafetyConfig, SafetyLayer
from robot.timing import TimingStats

__all__ = [
    "ACTION_NAMES",
    "MOTOR_NAMES",
    "BusFaultError",
    "ChunkExecutor",
    "ExecutionConfig",
    "Robot",
    "RobotConfig",
    "RobotError",
    "SafetyConfig",
    "SafetyLayer",
    "Teleoperator",
    "TeleoperatorConfig",
    "TimingStats",
    "make_robot",
    "make_teleoperator",
    "robot_config_for",
]
