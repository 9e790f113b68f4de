"""Robots (real arms through LeRobot, simulated MuJoCo arms) and what runs them."""

from robot.config import RobotConfig, TeleoperatorConfig, make_robot, make_teleoperator, robot_config_for
from robot.interface import ACTION_NAMES, MOTOR_NAMES, Robot, RobotError, Teleoperator

__all__ = [
    "ACTION_NAMES",
    "MOTOR_NAMES",
    "Robot",
    "RobotConfig",
    "RobotError",
    "Teleoperator",
    "TeleoperatorConfig",
    "make_robot",
    "make_teleoperator",
    "robot_config_for",
]
