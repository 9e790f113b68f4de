"""What chunkbot adds to LeRobot's arm and leader drivers, once for all of them.

`ServoDevice` is mixed in before LeRobot's driver class (`KochFollower(ServoArm, lerobot's KochFollower)`),
so LeRobot's own code does the bus work and its calibration procedure, and this adds what a robot
loop that runs for hours needs:

- a missing calibration is an error naming `python -m tools.calibrate ...`, never an `input()`
  prompt; a calibration file that differs from what the servos hold is written to the servos (what
  LeRobot does when its prompt is answered with Enter); files are read strictly and written atomically;
- a wrong port is a message pointing at `python -m tools.find_port`; servos that do not answer or
  answer with a hardware error are named (`robot.hardware.bus`); one glitch during connect is retried;
- one bus transaction at a time (a watchdog calling `hold()` mid-read would corrupt both), and a
  vanished port (USB unplugged) is a RobotError;
- `torque_off()`, `hold()` and `joint_limits()` for the safety layer;
- the FTDI latency timer set to 1 ms where the port has one (never fatal: absent on a pty).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError

from calibration import (
    CalibrationError,
    default_calibration_dir,
    joint_limits,
    load_calibration,
    require_calibration,
    save_calibration,
)
from robot.hardware.bus import ServoBus
from robot.interface import RobotError, ServoBusError

logger = logging.getLogger(__name__)

try:  # pyserial's flush() raises termios.error (not an OSError) when the device node vanished
    import termios

    PORT_ERRORS: tuple[type[BaseException], ...] = (OSError, termios.error)
except ImportError:  # Windows
    PORT_ERRORS = (OSError,)

FIND_PORT_HINT = "Find the arm's port with `python -m tools.find_port`"


@dataclass(kw_only=True)
class BusOptions:
    """What chunkbot's arm and leader configs add to LeRobot's."""

    # extra attempts after a failed bus read, each after draining the serial input
    read_retries: int = 2
    # extra attempts at the whole connect sequence after a servo missed a packet (LeRobot's connect
    # sends ~100 packets with no retry of its own, so one glitch would otherwise fail it)
    connect_retries: int = 1
    # set the USB-serial latency timer to 1 ms when the port has one (FTDI: 16 ms by default)
    set_latency_timer: bool = True
    # warn, naming the servo, when more than this share of its recent replies had a corrupted checksum
    checksum_warning_rate: float = 0.02

    def __post_init__(self) -> None:
        if self.read_retries < 0 or self.connect_retries < 0:
            raise ValueError(f"read_retries and connect_retries must be >= 0, got {self.read_retries}, "
                             f"{self.connect_retries}")
        if not 0 < self.checksum_warning_rate <= 1:
            raise ValueError(f"checksum_warning_rate must be in (0, 1], got {self.checksum_warning_rate}")
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:  # LeRobot's RobotConfig checks the cameras' settings
            parent()


class ServoDevice:
    """Mixed in before a LeRobot robot or teleoperator driver whose servos sit on one serial bus."""

    bus_class: type[ServoBus]   # DynamixelServoBus or FeetechServoBus
    flag: str                   # "robot" or "teleop": the command-line prefix, for messages
    name: str
    config: Any
    bus: ServoBus

    def __init__(self, config: Any) -> None:
        if config.calibration_dir is None:
            # LeRobot's default folder, read from the environment now (LeRobot fixes it at import) and
            # from the arm table (SO-100 and SO-101 share LeRobot's "so_follower" folder)
            config = dataclasses.replace(config, calibration_dir=default_calibration_dir(self.name))
        super().__init__(config)
        # LeRobot's drivers build their bus in __init__ with no way to choose its class: rebuild it on
        # the same motors as chunkbot's bus (retries, status bytes, torque off, hold).
        self.bus = self.bus_class(self.bus.port, self.bus.motors, self.calibration,
                                  read_retries=config.read_retries,
                                  checksum_warning_rate=config.checksum_warning_rate, label=self._what())
        self._bus_lock = threading.RLock()

    # -- LeRobot's calibration-file helpers (its base class reads and writes through these two) -------
    def _load_calibration(self, fpath: Path | None = None) -> None:
        self.calibration = load_calibration(fpath or self.calibration_fpath)  # a bad file: CalibrationError

    def _save_calibration(self, fpath: Path | None = None) -> None:
        save_calibration(self.calibration, fpath or self.calibration_fpath)  # atomic

    @property
    def calibration_path(self) -> Path:
        return self.calibration_fpath

    # -- identity ----------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, id={self.config.id!r}, port={self.config.port!r})"

    def _what(self) -> str:
        return f"{self.name} {self.config.id!r} on {self.config.port}"

    # -- lifecycle -------------------------------------------------------------------------------------
    def connect(self, calibrate: bool = True) -> None:
        """Open the port, check the servos, configure them, make sure they hold the file's calibration.

        Raises CalibrationError when there is no calibration file (never prompts), RobotError for a port
        that cannot be opened or servos that do not answer. `calibrate=False` connects as the servos
        are, calibration file or not (what `tools.calibrate` needs).
        """
        if calibrate and not self.calibration:  # raises, naming the calibrate command
            require_calibration(self.name, self.config.id, self.config.calibration_dir, self.config.port)
        if not self.config.port:
            raise RobotError(f"no port given for {self.name}. {FIND_PORT_HINT} and pass --{self.flag}.port=...")
        with self._bus_lock:
            for attempt in range(1 + self.config.connect_retries):
                try:
                    super().connect(calibrate=False)  # LeRobot's sequence, without its interactive step
                    if calibrate and not self.is_calibrated:
                        self._write_file_calibration_to_servos()
                        self.configure()  # again: torque back on, and the leader's gripper to its rest position
                    break
                except DeviceAlreadyConnectedError as e:
                    raise RobotError(f"{self._what()} is already connected") from e
                except (RobotError, KeyboardInterrupt):
                    self._release_quietly()
                    raise
                except (ConnectionError, RuntimeError) as e:
                    if isinstance(e, ConnectionError) and isinstance(e.__cause__, OSError):
                        self._release_quietly()  # the port could not be opened (SerialException)
                        raise RobotError(
                            f"could not open port {self.config.port!r} for {self.name} ({e.__cause__}). "
                            f"{FIND_PORT_HINT} and pass --{self.flag}.port=..."
                        ) from e
                    if attempt == self.config.connect_retries:
                        raise self._connect_error(e) from e  # names the silent servos, closes the port
                    logger.warning("%s: connect failed (%s); retrying", self._what(), str(e).strip().splitlines()[-1])
                    self._release_quietly()
                    time.sleep(0.1)
                except PORT_ERRORS as e:
                    self._release_quietly()
                    raise self._port_failed(e) from e
        if self.config.set_latency_timer:
            set_low_latency(self.config.port)

    def _write_file_calibration_to_servos(self) -> None:
        """What LeRobot does when its calibration prompt is answered with Enter: the servos' homing offsets
        or limits differ from the file, so write the file's values."""
        logger.warning("%s: the servos' calibration registers differ from %s; writing the file's values to them",
                       self._what(), self.calibration_fpath)
        self.bus.disable_torque()
        self.bus.write_calibration(self.calibration)

    def _connect_error(self, error: Exception) -> RobotError:
        """Which servos are silent or faulty, then close the port (LeRobot leaves it open after a failed check)."""
        try:
            diagnosis = self.bus.failure(f"connecting failed: {error}", list(self.bus.motors)) \
                if self.bus.port_handler.is_open else None
        except PORT_ERRORS:
            diagnosis = None
        self._release_quietly()
        if diagnosis is not None and len(diagnosis.motors) == len(self.bus.motors) and \
                not getattr(diagnosis, "faults", None):
            return RobotError(
                f"no servo answered on {self.config.port} ({self.name}). Is it the right port? "
                f"{FIND_PORT_HINT}. Is the arm's power supply on? Were the servos set up "
                f"(ids 1-6 at 1 Mbps: lerobot-setup-motors)? LeRobot said: {error}"
            )
        return diagnosis or RobotError(f"{self._what()}: connecting failed: {error}")

    def disconnect(self) -> None:
        """Disable torque (if configured) and close the port; with a dead or faulty servo or a vanished
        port, still close the port (LeRobot would leave it open) and raise a RobotError saying why."""
        with self._bus_lock:
            try:
                super().disconnect()
                return
            except DeviceNotConnectedError as e:
                raise RobotError(f"{self._what()} is not connected") from e
            except (ConnectionError, RuntimeError) as e:  # a servo did not confirm torque off
                problem = self._torque_off_after(e)
                self._release_quietly()
                raise problem from e
            except PORT_ERRORS as e:  # the port itself failed (USB unplugged)
                self._release_quietly()
                raise self._port_failed(e) from e

    def _torque_off_after(self, error: Exception) -> RobotError:
        """LeRobot's disconnect stopped at the first servo that failed: turn torque off on all that still
        answer, and say which did not confirm (or which reported a hardware error)."""
        try:
            self.bus.torque_off()
            if isinstance(error, ServoBusError):
                return error  # e.g. a servo's hardware error, already diagnosed
            return self.bus.failure(f"disconnecting failed ({error}); port closed anyway", [])
        except ServoBusError as unconfirmed:
            return unconfirmed
        except PORT_ERRORS as port_error:
            return self._port_failed(port_error)

    def _release_quietly(self) -> None:
        """Close the port and the cameras after a failure, without masking it."""
        try:
            if self.bus.port_handler.is_open:
                self.bus.port_handler.closePort()
        except Exception:  # noqa: BLE001 - closing after a failure must not mask it
            pass
        for cam in getattr(self, "cameras", {}).values():
            try:
                if cam.is_connected:
                    cam.disconnect()
            except Exception:  # noqa: BLE001 - best effort while shutting down
                logger.exception("camera disconnect failed")

    @contextmanager
    def _bus(self) -> Iterator[ServoBus]:
        """Serialise bus use; a vanished port (USB unplugged) becomes a RobotError."""
        with self._bus_lock:
            try:
                yield self.bus
            except ConnectionError:  # LeRobot's bus/connection errors (also OSErrors): as they are
                raise
            except PORT_ERRORS as e:
                raise self._port_failed(e) from e

    def _port_failed(self, error: BaseException) -> RobotError:
        return RobotError(
            f"{self._what()}: the serial port failed ({error!r}). Was the USB cable unplugged or the "
            f"controller board reset? Reconnect it and check the port ({FIND_PORT_HINT})."
        )

    # -- for the safety layer ----------------------------------------------------------------------------
    def torque_off(self) -> None:
        """Remove torque from every servo; ServoBusError names those that did not confirm."""
        with self._bus() as bus:
            bus.torque_off()

    def hold(self) -> dict[str, int]:
        """Make each servo's present position its goal (stop where it is, torque stays on)."""
        with self._bus() as bus:
            return bus.hold()

    def joint_limits(self) -> dict[str, tuple[float, float]]:
        """`{"<motor>.pos": (lo, hi)}` in robot units, from the loaded calibration."""
        if not self.calibration:
            raise CalibrationError(f"{self.name} {self.config.id!r} has no calibration at {self.calibration_fpath}")
        return joint_limits(self.name, self.calibration, getattr(self.config, "use_degrees", False))


class ServoArm(ServoDevice):
    """A follower arm: LeRobot's observation and action, one bus transaction at a time."""

    flag = "robot"

    def get_observation(self) -> dict[str, Any]:
        with self._bus():
            return super().get_observation()

    def send_action(self, action: dict[str, float]) -> dict[str, float]:
        with self._bus():
            return super().send_action(action)


class ServoLeader(ServoDevice):
    """A leader arm (teleoperator): LeRobot's action reading, one bus transaction at a time."""

    flag = "teleop"

    def get_action(self) -> dict[str, float]:
        with self._bus():
            return super().get_action()

    def send_feedback(self, feedback: dict[str, Any]) -> None:
        with self._bus():
            super().send_feedback(feedback)


def set_low_latency(port: str) -> bool | None:
    """Set the USB-serial latency timer to 1 ms. True: done or already 1; None: this port has no
    latency timer (pty, CDC-ACM); False: could not write it (a warning says how). Never raises."""
    try:
        tty = os.path.basename(os.path.realpath(port))
        timer = Path("/sys/bus/usb-serial/devices") / tty / "latency_timer"
        if not timer.exists():
            return None
        if timer.read_text().strip() == "1":
            return True
        timer.write_text("1")
        return True
    except OSError as e:
        logger.warning(
            "could not set the latency timer of %s to 1 ms (%s); reads will be slower. "
            "As root: echo 1 > /sys/bus/usb-serial/devices/<tty>/latency_timer", port, e,
        )
        return False
