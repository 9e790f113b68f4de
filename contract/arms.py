"""The arm types chunkbot drives: one row per `--robot.type` / `--teleop.type` that is an arm.

Each row says what the rest of the code would otherwise have to spell out again: which role the arm
plays, which servo bus and servo models it has (ids 1..6 in `MOTOR_NAMES` order), the units its
joints are read and commanded in, and where LeRobot keeps its calibration file.

Units are LeRobot's normalisation modes (`lerobot.motors.MotorNormMode` values): body joints in
`"degrees"` or in `"range_m100_100"` ([-100, 100] over the calibrated range), the gripper always in
`"range_0_100"` (0 closed, 100 open). The real arms' drivers are LeRobot's; `tests/test_arm_types.py`
checks this table against them.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.features import GRIPPER, MOTOR_NAMES

DEGREES = "degrees"
RANGE_M100_100 = "range_m100_100"
RANGE_0_100 = "range_0_100"

_DYNAMIXEL, _FEETECH, _MUJOCO = "dynamixel", "feetech", "mujoco"


@dataclass(frozen=True)
class ArmType:
    name: str                      # the type name on the command line, e.g. "so101_follower"
    role: str                      # "follower" (a robot) or "leader" (a teleoperator)
    bus: str                       # "dynamixel" (Protocol 2.0), "feetech" (protocol 0) or "mujoco" (simulated)
    models: tuple[str, ...]        # servo model per motor (LeRobot's model names); () when simulated
    degrees_by_default: bool       # body joints in degrees unless `use_degrees=false` is given
    degrees_option: bool = True    # False: the driver has no degrees mode (body joints always [-100, 100])
    # LeRobot's calibration sub-directory: the LeRobot driver class's `name`, which SO-100 and SO-101
    # share in LeRobot 0.6.1. None: nothing to calibrate (simulated).
    calibration_dir: str | None = None
    motors: tuple[str, ...] = MOTOR_NAMES
    # a simulated arm's real counterpart: the follower whose joints (names, units) it reports, the type a
    # policy trained in the sim's `pixels` observation mode is exported for
    real_type: str | None = None

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(range(1, len(self.motors) + 1))

    @property
    def simulated(self) -> bool:
        return self.bus == _MUJOCO

    @property
    def flag(self) -> str:
        """The command-line prefix that configures it: `--robot.*` or `--teleop.*`."""
        return "robot" if self.role == "follower" else "teleop"

    @property
    def calibration_category(self) -> str:
        """LeRobot's calibration sub-directory for the role: "robots" or "teleoperators"."""
        return "robots" if self.role == "follower" else "teleoperators"

    def units(self, use_degrees: bool) -> dict[str, str]:
        """The normalisation mode of each motor, with `use_degrees` as configured."""
        body = DEGREES if use_degrees and self.degrees_option else RANGE_M100_100
        return {m: (RANGE_0_100 if m == GRIPPER else body) for m in self.motors}


_KOCH_FOLLOWER_MODELS = ("xl430-w250", "xl430-w250", "xl330-m288", "xl330-m288", "xl330-m288", "xl330-m288")

ARM_TYPES: dict[str, ArmType] = {
    arm.name: arm
    for arm in (
        ArmType("koch_follower", "follower", _DYNAMIXEL, _KOCH_FOLLOWER_MODELS, degrees_by_default=False,
                calibration_dir="koch_follower"),
        ArmType("koch_leader", "leader", _DYNAMIXEL, ("xl330-m077",) * 6, degrees_by_default=False,
                degrees_option=False, calibration_dir="koch_leader"),
        ArmType("so100_follower", "follower", _FEETECH, ("sts3215",) * 6, degrees_by_default=True,
                calibration_dir="so_follower"),
        ArmType("so101_follower", "follower", _FEETECH, ("sts3215",) * 6, degrees_by_default=True,
                calibration_dir="so_follower"),
        ArmType("so100_leader", "leader", _FEETECH, ("sts3215",) * 6, degrees_by_default=True,
                calibration_dir="so_leader"),
        ArmType("so101_leader", "leader", _FEETECH, ("sts3215",) * 6, degrees_by_default=True,
                calibration_dir="so_leader"),
        ArmType("sim_so101", "follower", _MUJOCO, (), degrees_by_default=True, real_type="so101_follower"),
        ArmType("sim_koch", "follower", _MUJOCO, (), degrees_by_default=False, real_type="koch_follower"),
    )
}


def arm_type(name: str) -> ArmType:
    """The row for `name`; an unknown name is a ValueError listing the known ones."""
    try:
        return ARM_TYPES[name]
    except KeyError:
        raise ValueError(f"unknown arm type {name!r}; known: {', '.join(sorted(ARM_TYPES))}") from None


def real_arm_types(role: str | None = None) -> tuple[str, ...]:
    """The arm types with servos (and a calibration), optionally only followers or leaders."""
    return tuple(n for n, a in ARM_TYPES.items() if not a.simulated and (role is None or a.role == role))
