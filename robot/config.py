"""Config registries for robots and teleoperators (draccus choice types, as LeRobot does).

`--robot.type=sim_so101` / `--teleop.type=scripted` pick a registered dataclass; each device
module registers its own config with `@RobotConfig.register_subclass("<type>")`. `make_robot`
and `make_teleoperator` import the modules that register, so the registry is complete
whichever entry point runs first.
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from pathlib import Path

import draccus

# Modules that register robot / teleoperator types. Imported lazily so that the deploy path
# only pays for MuJoCo or LeRobot when it uses them; a module missing here is skipped (a later
# issue may not have landed yet) rather than breaking the registry.
_ROBOT_MODULES = ("robot.sim.robot", "robot.lerobot_arms")
_TELEOP_MODULES = ("robot.sim.expert", "robot.lerobot_arms", "robot.keyboard")


@dataclass(kw_only=True)
class RobotConfig(draccus.ChoiceRegistry, abc.ABC):
    id: str | None = None
    calibration_dir: Path | None = None

    @property
    def type(self) -> str:
        return self.get_choice_name(self.__class__)


@dataclass(kw_only=True)
class TeleoperatorConfig(draccus.ChoiceRegistry, abc.ABC):
    id: str | None = None
    calibration_dir: Path | None = None

    @property
    def type(self) -> str:
        return self.get_choice_name(self.__class__)


def register_all() -> None:
    for name in _ROBOT_MODULES + _TELEOP_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # a real missing dependency inside the module: surface it
                raise


def _known(registry: type[draccus.ChoiceRegistry]) -> list[str]:
    return sorted(registry.get_known_choices().keys())


def robot_config_for(type_name: str, **kwargs) -> RobotConfig:
    register_all()
    try:
        cls = RobotConfig.get_choice_class(type_name)
    except KeyError:
        raise ValueError(
            f"unknown robot type {type_name!r}; known types: {', '.join(_known(RobotConfig))}"
        ) from None
    return cls(**kwargs)


def make_robot(config: RobotConfig):
    """Build the robot a config describes (not yet connected)."""
    register_all()
    builder = getattr(config, "build", None)
    if builder is None:
        raise ValueError(f"robot type {config.type!r} has no builder")
    return builder()


def make_teleoperator(config: TeleoperatorConfig, robot=None):
    """Build a teleoperator; `robot` is handed to those that need the follower (scripted expert)."""
    register_all()
    return config.build(robot=robot)
