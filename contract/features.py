"""The names every part of chunkbot agrees on: motors, their features, and the keys of a policy frame.

A robot reports and takes `<motor>.pos` floats (LeRobot's naming); a policy frame gathers the float
features into one `observation.state` vector and keeps each camera as `observation.images.<camera>`;
a dataset stores the action the robot received under `action`. Datasets, the learner, the ONNX
actor and the runtime all use these names, so each is written here once.
"""

from __future__ import annotations

# LeRobot's motor order for the Koch and SO-100/SO-101 arms (servo ids 1..6 in this order).
MOTOR_NAMES: tuple[str, ...] = (
    "shoulder_pan",
    "shoulder_lift",
    "elbow_flex",
    "wrist_flex",
    "wrist_roll",
    "gripper",
)
GRIPPER = "gripper"


def position_feature(motor: str) -> str:
    """`"elbow_flex"` -> `"elbow_flex.pos"`: the observation and action feature of a motor's position."""
    return f"{motor}.pos"


ACTION_NAMES: tuple[str, ...] = tuple(position_feature(m) for m in MOTOR_NAMES)

STATE_KEY = "observation.state"
IMAGE_PREFIX = "observation.images."
ACTION_KEY = "action"
# In a frame handed to a policy with an observation history of L > 1 frames (and only there): the
# states of the previous L-1 control steps, (L-1, D) float32, oldest first. Policies keep no history:
# whoever steps the episode does (robot.history.ObservationHistory, e.g. the executor's), and fills it.
STATE_HISTORY_KEY = "state_history"

# What a policy observes on a simulated task: "state" (the privileged simulator state, for studies) or
# "pixels" (what a real follower arm with two cameras gives: joint positions and camera frames).
OBS_MODES: tuple[str, ...] = ("state", "pixels")
