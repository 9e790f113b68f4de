"""Imported by LeRobot's tools at start-up: registers chunkbot's sim arms and scripted teleoperator
with LeRobot (see `robot.lerobot_plugin`)."""

from robot.lerobot_plugin import register

register()
