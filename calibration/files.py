"""LeRobot-compatible calibration files: where they live, reading them strictly, writing them atomically.

A calibration file is what LeRobot 0.6.1 writes after `lerobot-calibrate` (draccus JSON dump of
`dict[str, MotorCalibration]`, indent 4):

    {"shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": -1021,
                      "range_min": 712, "range_max": 3390}, ...}

Default location, as LeRobot computes it: `$HF_LEROBOT_CALIBRATION/{robots|teleoperators}/<dir>/<id>.json`
where `$HF_LEROBOT_CALIBRATION` defaults to `$HF_LEROBOT_HOME/calibration` and that to
`$HF_HOME/lerobot/calibration` (`~/.cache/huggingface/lerobot/calibration`). `<dir>` is the
LeRobot class's `name` (`contract.arms`), which for the SO arms in 0.6.1 is `so_follower` /
`so_leader` for both SO-100 and SO-101 (older LeRobot releases used `so101_follower` etc.: we say
so when a file sits there instead). A file written here loads in LeRobot and vice versa.

Importing this module loads neither LeRobot nor torch: LeRobot's `MotorCalibration` (what its
buses compare and write) is imported when a file is read.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from contract import ARM_TYPES, MOTOR_NAMES, RobotError, real_arm_types

if TYPE_CHECKING:
    from lerobot.motors import MotorCalibration

_FIELDS = ("id", "drive_mode", "homing_offset", "range_min", "range_max")


class CalibrationError(RobotError):
    """A calibration file is missing or unusable; the message says which command fixes it."""


def calibration_root() -> Path:
    """LeRobot's calibration root, read from the environment at call time (tests may change it)."""
    if "HF_LEROBOT_CALIBRATION" in os.environ:
        return Path(os.environ["HF_LEROBOT_CALIBRATION"]).expanduser()
    if "HF_LEROBOT_HOME" in os.environ:
        return Path(os.environ["HF_LEROBOT_HOME"]).expanduser() / "calibration"
    hf_home = Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser()
    return hf_home / "lerobot" / "calibration"


def _lerobot_dir(device_type: str) -> tuple[str, str]:
    """(LeRobot category, calibration sub-directory) of an arm type with servos."""
    arm = ARM_TYPES.get(device_type)
    if arm is None or arm.calibration_dir is None:
        raise ValueError(
            f"no calibration layout for device type {device_type!r}; known: {', '.join(sorted(real_arm_types()))}"
        )
    return arm.calibration_category, arm.calibration_dir


def default_calibration_dir(device_type: str) -> Path:
    category, name = _lerobot_dir(device_type)
    return calibration_root() / category / name


def calibration_path(device_type: str, device_id: str | None, calibration_dir: Path | None = None) -> Path:
    """Where LeRobot reads/writes this device's calibration (`<dir>/<id>.json`, as LeRobot names it)."""
    directory = Path(calibration_dir) if calibration_dir is not None else default_calibration_dir(device_type)
    return directory / f"{device_id}.json"


def calibrate_command(device_type: str, device_id: str | None, port: str | None = None) -> str:
    """The command that writes the missing file."""
    _lerobot_dir(device_type)  # an arm type with a calibration, or a ValueError naming those
    flag = ARM_TYPES[device_type].flag
    port_arg = port if port else "<port from python -m tools.find_port>"
    return (
        f"python -m tools.calibrate --{flag}.type={device_type} --{flag}.port={port_arg} "
        f"--{flag}.id={device_id}"
    )


def _parse(raw: object, path: Path) -> dict[str, MotorCalibration]:
    from lerobot.motors import MotorCalibration  # LeRobot (and torch) only once a file is read

    if not isinstance(raw, dict) or not raw:
        raise ValueError("the top level must be a non-empty JSON object {motor: {...}}")
    calibration = {}
    for motor, entry in raw.items():
        if not isinstance(entry, dict):
            raise ValueError(f"motor {motor!r}: expected an object with keys {list(_FIELDS)}")
        missing = [k for k in _FIELDS if k not in entry]
        extra = [k for k in entry if k not in _FIELDS]
        if missing or extra:
            raise ValueError(f"motor {motor!r}: missing keys {missing}, unexpected keys {extra}")
        bad = [k for k in _FIELDS if not isinstance(entry[k], int) or isinstance(entry[k], bool)]
        if bad:
            raise ValueError(f"motor {motor!r}: {bad} must be integers")
        if entry["drive_mode"] not in (0, 1):
            raise ValueError(f"motor {motor!r}: drive_mode must be 0 or 1, got {entry['drive_mode']}")
        if entry["range_min"] >= entry["range_max"]:
            raise ValueError(
                f"motor {motor!r}: range_min {entry['range_min']} must be below range_max {entry['range_max']}"
            )
        calibration[motor] = MotorCalibration(**{k: entry[k] for k in _FIELDS})
    return calibration


def load_calibration(path: Path, motors: tuple[str, ...] | None = MOTOR_NAMES) -> dict[str, MotorCalibration]:
    """Read and check a calibration file; `motors` (if given) must all be present.

    Raises CalibrationError (path, what is wrong, what to do) for a missing or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"no calibration file at {path}")
    try:
        raw = json.loads(path.read_text())
        calibration = _parse(raw, path)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
        raise CalibrationError(
            f"calibration file {path} is malformed: {e}. Fix it by hand or recalibrate "
            f"(python -m tools.calibrate ...), which rewrites it."
        ) from None
    if motors is not None:
        missing = [m for m in motors if m not in calibration]
        if missing:
            raise CalibrationError(
                f"calibration file {path} lacks motors {missing} (has {sorted(calibration)}); "
                f"was it written for another arm type? Recalibrate with python -m tools.calibrate ..."
            )
    return calibration


def save_calibration(calibration: dict[str, MotorCalibration], path: Path) -> Path:
    """Write atomically (temp file in the same directory, fsync, rename): a crash mid-write never
    leaves a half-written file where LeRobot or we would read it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        motor: {k: int(getattr(cal, k)) for k in _FIELDS} for motor, cal in calibration.items()
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=4)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def require_calibration(
    device_type: str,
    device_id: str | None,
    calibration_dir: Path | None = None,
    port: str | None = None,
    motors: tuple[str, ...] | None = MOTOR_NAMES,
) -> dict[str, MotorCalibration]:
    """Load this device's calibration or raise CalibrationError naming the command that makes it."""
    path = calibration_path(device_type, device_id, calibration_dir)
    if not path.is_file():
        hint = ""
        legacy = calibration_root() / _lerobot_dir(device_type)[0] / device_type / f"{device_id}.json"
        if calibration_dir is None and legacy != path and legacy.is_file():
            hint = (
                f" A file from an older LeRobot release exists at {legacy}: copy it to {path} "
                f"if it is this arm's."
            )
        raise CalibrationError(
            f"{device_type} {device_id!r} is not calibrated: no file at {path}. "
            f"Run: {calibrate_command(device_type, device_id, port)}.{hint}"
        )
    return load_calibration(path, motors)
