"""Config registries for robots and teleoperators (draccus choice types, as LeRobot does).

`--robot.type=sim_so101` / `--teleop.type=scripted` pick a registered dataclass; each device
module registers its own config with `@RobotConfig.register_subclass("<type>")`. `make_robot`
and `make_teleoperator` import the modules that register, so the registry is complete
whichever entry point runs first.
"""

from __future__ import annotations

import abc
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import draccus

from contract import ARM_TYPES

# Which module registers each device type. Tools import only the modules the command line names
# (`register_for_cli`), so a simulated run never imports LeRobot (and with it torch) and the
# deploy path stays light; `register_all` imports every module (for --help and for tests).
SIM_MODULE = "robot.sim.robot"
HARDWARE_MODULE = "robot.hardware"
ROBOT_MODULES: dict[str, str] = {
    name: SIM_MODULE if arm.simulated else HARDWARE_MODULE for name, arm in ARM_TYPES.items() if arm.role == "follower"
}
TELEOP_MODULES: dict[str, str] = {
    **{name: HARDWARE_MODULE for name, arm in ARM_TYPES.items() if arm.role == "leader"},
    "scripted": "robot.sim.expert",
    "keyboard": "robot.keyboard",
}
# Always registered: the defaults of the tools' configs.
_DEFAULT_MODULES = ("robot.sim.robot", "robot.sim.expert")


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


def _import(name: str) -> None:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:  # a real missing dependency inside the module: surface it
            raise


def register_all() -> None:
    """Register every robot and teleoperator type."""
    for name in dict.fromkeys((*_DEFAULT_MODULES, *ROBOT_MODULES.values(), *TELEOP_MODULES.values())):
        _import(name)


def register_for_cli(argv: list[str] | None = None, prefixes: tuple[str, ...] = ("robot", "teleop")) -> None:
    """Register the defaults plus the types named as `--<prefix>.type=X` on the command line.

    `--help` (or an unknown type) registers everything, so the help lists every choice and draccus
    reports an unknown type against the full list.
    """
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        register_all()
        return
    for name in _DEFAULT_MODULES:
        _import(name)
    tables = {"robot": ROBOT_MODULES, "teleop": TELEOP_MODULES}
    for i, arg in enumerate(argv):
        for prefix in prefixes:
            key = f"--{prefix}.type"
            value = None
            if arg.startswith(key + "="):
                value = arg.split("=", 1)[1]
            elif arg == key and i + 1 < len(argv):
                value = argv[i + 1]
            if value is None:
                continue
            table = tables.get(prefix.split(".")[-1], {**ROBOT_MODULES, **TELEOP_MODULES})
            if value in table:
                _import(table[value])
            else:
                register_all()


def _known(registry: type[draccus.ChoiceRegistry]) -> list[str]:
    return sorted(registry.get_known_choices().keys())


def robot_config_for(type_name: str, **kwargs) -> RobotConfig:
    if type_name in ROBOT_MODULES:
        _import(ROBOT_MODULES[type_name])
    else:
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
    builder = getattr(config, "build", None)
    if builder is None:
        raise ValueError(f"robot type {config.type!r} has no builder")
    return builder()


def make_teleoperator(config: TeleoperatorConfig, robot=None):
    """Build a teleoperator; `robot` is handed to those that need the follower (scripted expert)."""
    return config.build(robot=robot)
