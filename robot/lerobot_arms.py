"""Real arms through LeRobot: Koch v1.1 (Dynamixel) and SO-100/SO-101 (Feetech), followers and leaders.

Thin adapters: LeRobot's own drivers (`lerobot.robots.koch_follower.KochFollower`,
`lerobot.robots.so_follower.SO101Follower`, `lerobot.teleoperators.*_leader`) do all the bus work;
what we add is what a long-running robot loop needs and LeRobot 0.6.1 lacks:

- bounded read retries with the serial input flushed between tries (a corrupted status packet
  leaves the other servos' replies queued), then a `ServoBusError` (a `RobotError`) that names the
  servos that no longer answer a ping and what to check;
- a missing calibration in a non-interactive run is an error naming `python -m tools.calibrate ...`,
  never an `input()` prompt; a calibration file that differs from what the servos hold is written to
  the servos, as LeRobot does when its prompt is answered with ENTER;
- a wrong port is a message pointing at `python -m tools.find_port`;
- `torque_off()` (broadcast, then verified per servo, best effort over dead ones) and `hold()`
  (present position becomes the goal) for the runtime's safety layer;
- the FTDI latency timer set to 1 ms where the port has one (never fatal: absent on a pty).

We never patch LeRobot's files: the few behaviours we change are replaced on the instances we own
(`robot.calibrate`, `robot._save_calibration`, `robot.bus.sync_read`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import lerobot.cameras.opencv  # noqa: F401  (registers --robot.cameras type "opencv" with draccus)
from lerobot.cameras import CameraConfig

from calibration.files import (
    CalibrationError,
    calibration_path,
    default_calibration_dir,
    load_calibration,
    require_calibration,
    save_calibration,
)
from calibration.limits import joint_limits
from robot.config import RobotConfig, TeleoperatorConfig
from robot.interface import Robot, RobotError, Teleoperator

logger = logging.getLogger(__name__)

try:  # pyserial's flush() raises termios.error (not an OSError) when the device node vanished
    import termios

    PORT_ERRORS: tuple[type[BaseException], ...] = (OSError, termios.error)
except ImportError:  # Windows
    PORT_ERRORS = (OSError,)

BROADCAST_ID = 0xFE  # the same on Dynamixel Protocol 2.0 and Feetech protocol 0
FIND_PORT_HINT = "Find the arm's port with `python -m tools.find_port`"


class ServoBusError(RobotError):
    """The servo bus failed (a read after its retries, the connect check, torque off).
    `motors` are the servos that did not answer a ping afterwards (empty: all answered)."""

    def __init__(self, message: str, motors: list[str]):
        super().__init__(message)
        self.motors = motors


# ----------------------------------------------------------------------------------------------------
# configs (registered in OUR registries; `build()` returns the adapter, not yet connected)
# ----------------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class _ArmBusOptions:
    """What every arm and leader adapter adds on top of LeRobot's own config."""

    # serial port of the arm's controller board, e.g. /dev/ttyUSB0 (python -m tools.find_port)
    port: str
    # extra attempts after a failed bus read (each after flushing the serial input)
    read_retries: int = 2
    # extra attempts at the whole connect sequence after a servo missed a packet (LeRobot's connect
    # sends ~100 packets with no retry of its own, so one glitch would otherwise fail it)
    connect_retries: int = 1
    # set the USB-serial latency timer to 1 ms when the port has one (FTDI: 16 ms by default)
    set_latency_timer: bool = True

    def _check(self) -> None:
        if self.read_retries < 0 or self.connect_retries < 0:
            raise ValueError(
                f"read_retries and connect_retries must be >= 0, got {self.read_retries}, {self.connect_retries}"
            )


@dataclass(kw_only=True)
class _FollowerConfig(RobotConfig, _ArmBusOptions):
    """A follower arm: LeRobot's config fields (same names and defaults) plus our bus options."""

    cameras: dict[str, CameraConfig] = field(default_factory=dict)
    # LeRobot's per-step cap on |goal - present| (robot units); None = no cap (our safety layer caps)
    max_relative_target: float | None = None
    disable_torque_on_disconnect: bool = True
    use_degrees: bool = True

    def __post_init__(self) -> None:
        self._check()

    def build(self) -> "LeRobotArm":
        return LeRobotArm(self)


@RobotConfig.register_subclass("koch_follower")
@dataclass(kw_only=True)
class KochFollowerConfig(_FollowerConfig):
    use_degrees: bool = False  # LeRobot's default for Koch: body joints in [-100, 100]


@RobotConfig.register_subclass("so100_follower")
@dataclass(kw_only=True)
class SO100FollowerConfig(_FollowerConfig):
    pass


@RobotConfig.register_subclass("so101_follower")
@dataclass(kw_only=True)
class SO101FollowerConfig(_FollowerConfig):
    pass


@dataclass(kw_only=True)
class _LeaderConfig(TeleoperatorConfig, _ArmBusOptions):
    """A leader arm (teleoperator): LeRobot's config fields plus our bus options."""

    def __post_init__(self) -> None:
        self._check()

    def build(self, robot: Any = None) -> "LeRobotLeader":
        return LeRobotLeader(self)


@TeleoperatorConfig.register_subclass("koch_leader")
@dataclass(kw_only=True)
class KochLeaderConfig(_LeaderConfig):
    # the leader's gripper is held here under torque, so it springs back like a trigger
    gripper_open_pos: float = 50.0


@dataclass(kw_only=True)
class _SOLeaderConfig(_LeaderConfig):
    use_degrees: bool = True


@TeleoperatorConfig.register_subclass("so100_leader")
@dataclass(kw_only=True)
class SO100LeaderConfig(_SOLeaderConfig):
    pass


@TeleoperatorConfig.register_subclass("so101_leader")
@dataclass(kw_only=True)
class SO101LeaderConfig(_SOLeaderConfig):
    pass


def _lerobot_device(config: _ArmBusOptions, device_type: str, calibration_dir: Path) -> Any:
    """Build LeRobot's own robot / teleoperator for our config (each driver module imported on use)."""
    common = dict(port=config.port, id=config.id, calibration_dir=calibration_dir)
    if device_type == "koch_follower":
        from lerobot.robots.koch_follower import KochFollower, KochFollowerConfig as LRConfig

        return KochFollower(LRConfig(**common, cameras=config.cameras, use_degrees=config.use_degrees,
                                     max_relative_target=config.max_relative_target,
                                     disable_torque_on_disconnect=config.disable_torque_on_disconnect))
    if device_type in ("so100_follower", "so101_follower"):
        from lerobot.robots.so_follower import SOFollower, SOFollowerRobotConfig as LRConfig

        # num_read_retries=0: retries are ours, with the input flushed between tries
        return SOFollower(LRConfig(**common, cameras=config.cameras, use_degrees=config.use_degrees,
                                   max_relative_target=config.max_relative_target,
                                   disable_torque_on_disconnect=config.disable_torque_on_disconnect,
                                   num_read_retries=0))
    if device_type == "koch_leader":
        from lerobot.teleoperators.koch_leader import KochLeader, KochLeaderConfig as LRConfig

        return KochLeader(LRConfig(**common, gripper_open_pos=config.gripper_open_pos))
    if device_type in ("so100_leader", "so101_leader"):
        from lerobot.teleoperators.so_leader import SOLeader, SOLeaderTeleopConfig as LRConfig

        return SOLeader(LRConfig(**common, use_degrees=config.use_degrees, num_read_retries=0))
    raise ValueError(f"no LeRobot driver for {device_type!r}")


# ----------------------------------------------------------------------------------------------------
# serial-port helpers
# ----------------------------------------------------------------------------------------------------
def drain_input(bus: Any, quiet_s: float = 0.002, max_s: float = 0.05) -> int:
    """Read and drop whatever arrives until the line has been quiet for `quiet_s` (late replies of a
    failed transaction), then clear the input buffer. Returns the bytes dropped."""
    ser = getattr(bus.port_handler, "ser", None)
    if ser is None or not bus.port_handler.is_open:
        return 0
    dropped = 0
    start = last = time.monotonic()
    while True:
        now = time.monotonic()
        waiting = ser.in_waiting
        if waiting:
            dropped += len(ser.read(waiting))
            last = now
        elif now - last >= quiet_s or now - start >= max_s:
            break
        else:
            time.sleep(0.0002)
    ser.reset_input_buffer()
    bus.port_handler.is_using = False
    return dropped


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


# ----------------------------------------------------------------------------------------------------
# the adapter
# ----------------------------------------------------------------------------------------------------
class _LeRobotDevice:
    """What the arm and the leader adapters share: connect, retries, diagnosis, torque helpers."""

    config: _ArmBusOptions
    name: str
    _category_flag: str  # "robot" or "teleop", for messages

    def __init__(self, config: Any):
        self.config = config
        self.name = config.type
        directory = Path(config.calibration_dir) if config.calibration_dir else default_calibration_dir(self.name)
        self.calibration_path = calibration_path(self.name, config.id, directory)
        if self.calibration_path.is_file():
            load_calibration(self.calibration_path)  # a malformed file fails here, with our message
        self.lerobot = _lerobot_device(config, self.name, directory)
        # One transaction on the bus at a time: a watchdog thread calling hold() or torque_off()
        # while the loop is mid-read would otherwise interleave packets and corrupt both.
        self._bus_lock = threading.RLock()
        # Never prompt from a robot loop: replace LeRobot's interactive calibrate on this instance.
        self.lerobot.calibrate = self._write_file_calibration_to_servos
        self.lerobot._save_calibration = self._save_calibration
        self._install_read_retries()

    # -- identity --------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, id={self.config.id!r}, port={self.config.port!r})"

    @property
    def bus(self) -> Any:
        return self.lerobot.bus

    def _what(self) -> str:
        return f"{self.name} {self.config.id!r} on {self.config.port}"

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self.lerobot.is_connected

    @property
    def is_calibrated(self) -> bool:
        return self.lerobot.is_calibrated

    def connect(self, calibrate: bool = True) -> None:
        """Open the port, check the servos, make sure they hold the file's calibration, configure.

        Raises CalibrationError when there is no calibration file (never prompts), RobotError for a
        port that cannot be opened or servos that do not answer. `calibrate=False` connects as the
        servos are, calibration file or not (what `tools.calibrate` needs).
        """
        from lerobot.utils.errors import DeviceAlreadyConnectedError

        if calibrate and not self.lerobot.calibration:  # raises, naming the calibrate command
            require_calibration(self.name, self.config.id, self.config.calibration_dir, self.config.port)
        if not self.config.port:
            raise RobotError(f"no port given for {self.name}. {FIND_PORT_HINT} and pass --{self._category_flag}.port=...")
        with self._bus_lock:
            for attempt in range(1 + self.config.connect_retries):
                try:
                    self.lerobot.connect(calibrate=calibrate)
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
                            f"{FIND_PORT_HINT} and pass --{self._category_flag}.port=..."
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

    def _connect_error(self, error: Exception) -> RobotError:
        """Which servos are silent, then close the port (LeRobot leaves it open after a failed check)."""
        try:
            silent = self._unanswering(list(self.bus.motors)) if self.bus.port_handler.is_open else []
        except PORT_ERRORS:
            silent = []
        self._release_quietly()
        if silent and len(silent) == len(self.bus.motors):
            return RobotError(
                f"no servo answered on {self.config.port} ({self.name}). Is it the right port? "
                f"{FIND_PORT_HINT}. Is the arm's power supply on? Were the servos set up "
                f"(ids 1-6 at 1 Mbps: lerobot-setup-motors)? LeRobot said: {error}"
            )
        return self._servo_error(f"connecting failed: {error}", silent)

    def disconnect(self) -> None:
        """Disable torque (if configured) and close the port; with a dead servo or a vanished port,
        still close the port (LeRobot would leave it open) and raise a RobotError saying why."""
        from lerobot.utils.errors import DeviceNotConnectedError

        with self._bus_lock:
            try:
                self.lerobot.disconnect()
                return
            except DeviceNotConnectedError as e:
                raise RobotError(f"{self._what()} is not connected") from e
            except (ConnectionError, RuntimeError) as e:  # a servo did not confirm torque off
                error: Exception = e
                failed: list[str] = []
                try:
                    self._torque_off(self.bus)
                except ServoBusError as torque_error:
                    failed = torque_error.motors
                except (RobotError, *PORT_ERRORS):
                    pass
            except PORT_ERRORS as e:  # the port itself failed (USB unplugged)
                self._release_quietly()
                raise self._port_failed(e) from e
            self._release_quietly()
            raise self._servo_error(f"disconnecting failed ({error}); port closed anyway", failed) from error

    def _release_quietly(self) -> None:
        """Close the port and the cameras after a failure, without masking it."""
        self._close_port_quietly()
        for cam in getattr(self.lerobot, "cameras", {}).values():
            try:
                if cam.is_connected:
                    cam.disconnect()
            except Exception:  # noqa: BLE001 - best effort while shutting down
                logger.exception("camera disconnect failed")

    def calibrate(self) -> None:
        """LeRobot's interactive calibration (prompts on the terminal); the file is written atomically.
        Connect with `connect(calibrate=False)` first, as `tools.calibrate` does."""
        type(self.lerobot).calibrate(self.lerobot)

    def configure(self) -> None:
        self.lerobot.configure()

    @contextmanager
    def _bus(self) -> Iterator[Any]:
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

    # -- safety helpers ---------------------------------------------------------------------------
    def torque_off(self) -> None:
        """Remove torque from every servo: one broadcast write (reaches every live servo at once), then
        a verified write per servo. Raises ServoBusError naming the servos that did not confirm."""
        with self._bus() as bus:
            self._torque_off(bus)

    def _torque_off(self, bus: Any) -> None:
        drain_input(bus, quiet_s=0.0005)
        addr = bus.model_ctrl_table[bus.motors[next(iter(bus.motors))].model]["Torque_Enable"][0]
        bus.packet_handler.write1ByteTxOnly(bus.port_handler, BROADCAST_ID, addr, 0)
        failed = []
        for motor in bus.motors:
            try:
                bus.disable_torque(motor, num_retry=1)
            except (ConnectionError, RuntimeError):
                drain_input(bus, quiet_s=0.0005)
                failed.append(motor)
        if failed:
            raise self._servo_error("torque off was not confirmed", failed)

    def hold(self) -> dict[str, int]:
        """Make each servo's present position its goal (stop where it is, torque stays on).
        Raw encoder counts, so no normalisation clipping can move a servo. Returns them."""
        with self._bus() as bus:
            present = bus.sync_read("Present_Position", normalize=False)
            bus.sync_write("Goal_Position", present, normalize=False)
        return present

    def joint_limits(self) -> dict[str, tuple[float, float]]:
        """`{"<motor>.pos": (lo, hi)}` in robot units, from the loaded calibration."""
        if not self.lerobot.calibration:
            raise CalibrationError(f"{self.name} {self.config.id!r} has no calibration at {self.calibration_path}")
        return joint_limits(self.name, self.lerobot.calibration, getattr(self.config, "use_degrees", False))

    # -- internals ------------------------------------------------------------------------------------
    def _write_file_calibration_to_servos(self) -> None:
        """Stands in for LeRobot's `calibrate()` during `connect()`: the servos' homing offsets or
        limits differ from the file, so write the file's values (LeRobot's ENTER answer)."""
        logger.warning(
            "%s: the servos' calibration registers differ from %s; writing the file's values to them",
            self._what(), self.calibration_path,
        )
        self.bus.disable_torque()
        self.bus.write_calibration(self.lerobot.calibration)
        if not self.bus.apply_drive_mode:
            # Dynamixel reverses direction in the servo (Drive_Mode register) and LeRobot compares it
            # in `is_calibrated`, but its write_calibration leaves it out: write it too.
            for motor, cal in self.lerobot.calibration.items():
                self.bus.write("Drive_Mode", motor, cal.drive_mode)

    def _save_calibration(self, fpath: Path | None = None) -> None:
        save_calibration(self.lerobot.calibration, Path(fpath) if fpath else self.calibration_path)

    def _install_read_retries(self) -> None:
        bus = self.bus
        original: Callable[..., dict[str, Any]] = bus.sync_read
        retries = self.config.read_retries

        def sync_read(data_name: str, motors: Any = None, *, normalize: bool = True, num_retry: int = 0):
            from lerobot.utils.errors import DeviceNotConnectedError

            for attempt in range(1 + retries):
                try:
                    return original(data_name, motors, normalize=normalize, num_retry=num_retry)
                except DeviceNotConnectedError:
                    raise
                except ConnectionError as e:
                    last_error = e
                    dropped = drain_input(bus)
                    logger.debug("sync read of %s failed (try %d, %d stale bytes dropped): %s",
                                 data_name, attempt + 1, dropped, e)
            names = bus._get_motors_list(motors)
            raise self._servo_error(
                f"reading {data_name} failed {1 + retries} times in a row "
                f"({str(last_error).strip().splitlines()[-1]})",
                self._unanswering(names),
            ) from last_error

        bus.sync_read = sync_read

    def _unanswering(self, motors: list[str]) -> list[str]:
        silent = []
        for motor in motors:
            drain_input(self.bus, quiet_s=0.0005)
            if self.bus.ping(motor, num_retry=1) is None:  # one retry: name only servos that stay silent
                silent.append(motor)
        drain_input(self.bus, quiet_s=0.0005)
        return silent

    def _servo_error(self, what: str, silent: list[str]) -> ServoBusError:
        if silent:
            who = ", ".join(f"{m} (id {self.bus.motors[m].id})" for m in silent)
            advice = (
                f"Servo(s) not answering: {who}. Check that servo's cable and every connector between it "
                "and the controller board (servos are daisy-chained: one loose plug silences all servos "
                "behind it), that the arm's power supply is on, and that the servo's id was not changed."
            )
        else:
            advice = (
                "Every servo answered a ping afterwards, so the bus is dropping or corrupting packets: "
                "check the cables for loose contacts and the power supply (a sagging supply resets servos)."
            )
        return ServoBusError(f"{self._what()}: {what}. {advice}", silent)

    def _close_port_quietly(self) -> None:
        try:
            if self.bus.port_handler.is_open:
                self.bus.port_handler.closePort()
        except Exception:  # noqa: BLE001 - closing after a failure must not mask it
            pass


class LeRobotArm(_LeRobotDevice, Robot):
    """A Koch / SO-100 / SO-101 follower through LeRobot's driver, behind our `Robot` interface."""

    _category_flag = "robot"

    @property
    def observation_features(self) -> dict[str, Any]:
        return self.lerobot.observation_features

    @property
    def action_features(self) -> dict[str, Any]:
        return self.lerobot.action_features

    def get_observation(self) -> dict[str, Any]:
        with self._bus():
            return self.lerobot.get_observation()

    def send_action(self, action: dict[str, float]) -> dict[str, float]:
        with self._bus():
            return self.lerobot.send_action(action)


class LeRobotLeader(_LeRobotDevice, Teleoperator):
    """A Koch / SO-100 / SO-101 leader arm through LeRobot's driver, behind our `Teleoperator`."""

    _category_flag = "teleop"

    @property
    def action_features(self) -> dict[str, Any]:
        return self.lerobot.action_features

    def get_action(self) -> dict[str, float]:
        with self._bus():
            return self.lerobot.get_action()

    def send_feedback(self, feedback: dict[str, Any]) -> None:
        if self.name == "koch_leader":
            return  # LeRobot's Koch leader has no feedback (raises NotImplementedError)
        with self._bus():
            self.lerobot.send_feedback(feedback)
