"""chunkbot's simulated arms and scripted teleoperator in LeRobot's own registries, for LeRobot's tools.

LeRobot's command-line tools (`lerobot-record`, `lerobot-teleoperate`, ...) call
`lerobot.utils.import_utils.register_third_party_plugins()`, which imports every installed
distribution whose name starts with `lerobot_robot_`, `lerobot_teleoperator_`, ... chunkbot's
`./setup.sh` installs one, `lerobot_robot_chunkbot` (plugins/), whose import calls `register()`:

    lerobot-record --robot.type=sim_so101 --teleop.type=scripted --dataset.repo_id=local/lift \\
        --dataset.root=outputs/datasets/lift --dataset.num_episodes=1 --dataset.single_task=lift \\
        --dataset.push_to_hub=false --play_sounds=false

The classes registered are chunkbot's own configs (LeRobot's registry does not require its base
class); LeRobot builds their devices by name (`SimSO101Config` -> `robot.sim.SimSO101`). The devices
follow LeRobot's `Robot` / `Teleoperator` interfaces method for method without inheriting them
(inheriting would make every simulated run import LeRobot and torch), so they are registered as
virtual subclasses of LeRobot's ABCs: `lerobot-record` checks `isinstance(teleop, Teleoperator)`.
The real arms are not registered: LeRobot has its own under the same names. Other LeRobot types in chunkbot's
tools go the other way (`robot.config.adopt_lerobot_types`).
"""

from __future__ import annotations

from contract import ARM_TYPES


def register() -> None:
    """Register `sim_so101`, `sim_koch` (robots) and `scripted` (teleoperator) with LeRobot."""
    from lerobot.robots import Robot as LeRobotRobot
    from lerobot.robots import RobotConfig as LeRobotRobotConfig
    from lerobot.teleoperators import Teleoperator as LeRobotTeleoperator
    from lerobot.teleoperators import TeleoperatorConfig as LeRobotTeleoperatorConfig

    from robot.config import RobotConfig, TeleoperatorConfig
    from robot.sim import ScriptedTeleop, SimRobot  # registers the sim types and `scripted` with chunkbot

    for name, arm in ARM_TYPES.items():
        if arm.simulated:
            LeRobotRobotConfig.register_subclass(name, RobotConfig.get_choice_class(name))
    LeRobotTeleoperatorConfig.register_subclass("scripted", TeleoperatorConfig.get_choice_class("scripted"))
    LeRobotRobot.register(SimRobot)
    LeRobotTeleoperator.register(ScriptedTeleop)
