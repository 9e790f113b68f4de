"""Config registries for robots and teleoperators (draccus choice types, as LeRobot does).

`--robot.type=sim_so101` / `--teleop.type=scripted` pick a registered dataclass; each device
module registers its own config with `@RobotConfig.register_subclass("<type>")`. `make_robot`
and `make_teleoperator` import the modules that register, so the registry is complete
whichever entry point runs first.

chunkbot's registries are its own (LeRobot's import torch, and a simulated run must not), but they
hold every type LeRobot knows too: a type chunkbot does not define (`omx_follower`, `lekiwi`, a
`lerobot_robot_*` plugin's) is looked up in LeRobot's registries (`adopt_lerobot_types`) and built by
LeRobot's own factories. chunkbot's own types keep their names: its `koch_follower` is LeRobot's
driver with chunkbot's bus handling (`robot.hardware`).
"""

from __future__ import annotations

import abc
import importlib
import logging
import pkgutil
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
    """Register every robot and teleoperator type of chunkbot's."""
    for name in dict.fromkeys((*_DEFAULT_MODULES, *ROBOT_MODULES.values(), *TELEOP_MODULES.values())):
        _import(name)


def adopt_lerobot_types() -> None:
    """Make every robot and teleoperator type LeRobot knows a choice here too: LeRobot's own (all of
    `lerobot.robots` / `lerobot.teleoperators`) and installed plugins' (`lerobot_robot_*`, ...). A name
    chunkbot defines keeps chunkbot's class. Loads LeRobot, hence torch."""
    import lerobot.cameras
    import lerobot.robots
    import lerobot.teleoperators
    from lerobot.utils.import_utils import register_third_party_plugins

    register_all()  # chunkbot's names first: they keep chunkbot's classes
    for package in (lerobot.cameras, lerobot.robots, lerobot.teleoperators):  # each subpackage registers its types
        for module in pkgutil.iter_modules(package.__path__):
            if module.ispkg:
                try:
                    importlib.import_module(f"{package.__name__}.{module.name}")
                except ImportError as e:  # an optional dependency is missing: that type is not offered
                    logging.getLogger(__name__).debug("LeRobot's %s is unavailable: %s", module.name, e)
    register_third_party_plugins()
    for ours, theirs in ((RobotConfig, lerobot.robots.RobotConfig),
                         (TeleoperatorConfig, lerobot.teleoperators.TeleoperatorConfig)):
        for name, config_class in theirs.get_known_choices().items():
            if name not in ours.get_known_choices():
                ours.register_subclass(name, config_class)


def register_for_cli(argv: list[str] | None = None, prefixes: tuple[str, ...] = ("robot", "teleop")) -> None:
    """Register the defaults plus the types named as `--<prefix>.type=X` on the command line.

    `--help` (or a type chunkbot does not define) registers everything, LeRobot's types included, so
    the help lists every choice and draccus reports an unknown type against the full list.
    """
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        adopt_lerobot_types()
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
            else:  # not chunkbot's: LeRobot's or a plugin's, or unknown (draccus then lists every choice)
                adopt_lerobot_types()


def _known(registry: type[draccus.ChoiceRegistry]) -> list[str]:
    return sorted(registry.get_known_choices().keys())


def robot_config_for(type_name: str, **kwargs) -> RobotConfig:
    if type_name in ROBOT_MODULES:
        _import(ROBOT_MODULES[type_name])
    else:
        adopt_lerobot_types()
    try:
        cls = RobotConfig.get_choice_class(type_name)
    except KeyError:
        raise ValueError(
            f"unknown robot type {type_name!r}; known types: {', '.join(_known(RobotConfig))}"
        ) from None
    return cls(**kwargs)


def make_robot(config: RobotConfig):
    """Build the robot a config describes (not yet connected): chunkbot's own through its config's
    `build()`, any other LeRobot type through LeRobot's factory."""
    builder = getattr(config, "build", None)
    if builder is not None:
        return builder()
    from lerobot.robots import make_robot_from_config

    return make_robot_from_config(config)


def make_teleoperator(config: TeleoperatorConfig, robot=None):
    """Build a teleoperator; `robot` is handed to chunkbot's that need the follower (scripted expert)."""
    builder = getattr(config, "build", None)
    if builder is not None:
        return builder(robot=robot)
    from lerobot.teleoperators import make_teleoperator_from_config

    return make_teleoperator_from_config(config)
