"""Simulated SO-101 / Koch arms (MuJoCo), their tasks as gymnasium envs, and a scripted expert.

Importing this package registers the gymnasium ids `chunkbot/{SO101,Koch}{Reach,Lift,PickPlace}-v0`
and the robot / teleoperator types `sim_so101`, `sim_koch` and `scripted`.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless offscreen rendering; must precede `import mujoco`

from robot.sim.arm import CAMERAS, SimArm  # noqa: E402
from robot.sim.expert import (  # noqa: E402
    ExpertChunkPolicy,
    ScriptedExpert,
    ScriptedTeleop,
    ScriptedTeleopConfig,
    make_env_expert,
)
from robot.sim.robot import (  # noqa: E402
    SimKoch,
    SimKochConfig,
    SimRobot,
    SimRobotConfig,
    SimSO101,
    SimSO101Config,
)
from robot.sim.task_spec import TASKS, SimTask  # noqa: E402
from robot.sim.tasks import ENV_IDS, SimArmEnv, register_envs  # noqa: E402

register_envs()

__all__ = [
    "CAMERAS",
    "ENV_IDS",
    "ExpertChunkPolicy",
    "TASKS",
    "ScriptedExpert",
    "ScriptedTeleop",
    "ScriptedTeleopConfig",
    "SimArm",
    "SimArmEnv",
    "SimKoch",
    "SimKochConfig",
    "SimRobot",
    "SimRobotConfig",
    "SimSO101",
    "SimSO101Config",
    "SimTask",
    "make_env_expert",
]
