"""LeRobot's Dynamixel and Feetech buses with what a long-running robot loop needs on top.

- bounded read retries with the serial input drained between tries: a corrupted status packet aborts
  LeRobot's sync read while the other servos' replies are still queued, and would poison the next read;
- the status byte of every reply (`robot.hardware.servo_status`): a servo that answers with a hardware
  error (overload, overheating, ...) raises `ServoFaultError` naming it, the error and what to do, at
  the first read or write that sees it; a silent servo is a `ServoBusError` saying "not answering";
- a warning naming the servo when too many of its replies arrive with a bad checksum;
- `torque_off()` (a broadcast, then verified per servo, best effort over dead ones) and `hold()`.

Only public LeRobot and SDK members are used; the one reach below LeRobot (the packet handler that
records the status byte) is installed in `__init__` and explained in `servo_status`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any, Iterator

import dynamixel_sdk as dxl
import scservo_sdk as scs
from lerobot.motors import Motor, MotorCalibration
from lerobot.motors.dynamixel import DynamixelMotorsBus
from lerobot.motors.feetech import FeetechMotorsBus
from lerobot.motors.motors_bus import get_address
from lerobot.utils.errors import DeviceNotConnectedError

from robot.hardware.servo_status import (
    DYNAMIXEL_ALERT,
    DYNAMIXEL_HARDWARE_ERRORS,
    FEETECH_HARDWARE_ERRORS,
    DynamixelStatusHandler,
    FeetechStatusHandler,
    StatusLog,
    bit_names,
)
from robot.interface import ServoBusError, ServoFaultError

logger = logging.getLogger(__name__)

BROADCAST_ID = 0xFE  # the same on Dynamixel Protocol 2.0 and Feetech protocol 0
MIN_REPLIES_FOR_RATE = 100  # a servo's checksum-error rate is judged over at least this many replies

# What to do about each hardware error (names as in servo_status).
FAULT_ADVICE = {
    "overload": "the joint was blocked or carried more than the servo can hold: free it and lighten the load",
    "overheating": "the servo is too hot: let it cool for a few minutes and lower its load",
    "input voltage": "the supply voltage is outside the servo's range: check the power supply and its plug",
    "electrical shock": "the servo drew too much current: check its wiring for a short and the joint's load",
    "overcurrent": "the servo drew too much current: check its wiring for a short and the joint's load",
    "motor encoder": "the servo's position sensor failed: if it persists after a power cycle, replace the servo",
    "angle sensor": "the servo's position sensor failed: if it persists after a power cycle, replace the servo",
}


class ServoBus:
    """Mixed in before LeRobot's bus class (see `DynamixelServoBus`, `FeetechServoBus`)."""

    status_handler: type           # the SDK packet handler that records status bytes (servo_status)
    hardware_error_mask: int       # the error-byte bits that mean "hardware error"
    sdk_success: int               # the SDK's COMM_SUCCESS
    label: str  # what the messages call this bus, e.g. "koch_follower 'arm' on /dev/ttyUSB0"

    def __init__(self, port: str, motors: dict[str, Motor], calibration: dict[str, MotorCalibration] | None = None,
                 *, read_retries: int = 2, checksum_warning_rate: float = 0.02, label: str | None = None) -> None:
        super().__init__(port, motors, calibration)
        self.read_retries = read_retries
        self.checksum_warning_rate = checksum_warning_rate
        self.label = label or f"servo bus on {port}"
        # The one reach below LeRobot (servo_status explains why): its bus builds the SDK packet handler
        # and the sync reader/writer that use it in __init__, with no way to choose the handler's class.
        self.status = StatusLog()
        self.packet_handler = self.status_handler(self.status)
        self.sync_reader = type(self.sync_reader)(self.port_handler, self.packet_handler, 0, 0)
        self.sync_writer = type(self.sync_writer)(self.port_handler, self.packet_handler, 0, 0)

    # -- reads and writes ----------------------------------------------------------------------------
    def sync_read(self, data_name: str, motors: str | Sequence[str] | None = None, *, normalize: bool = True,
                  num_retry: int = 0) -> dict[str, Any]:
        """LeRobot's sync read, retried with the input drained between tries, then checked for faults."""
        names = self._names(motors)
        tries = 1 + max(num_retry, self.read_retries)
        for attempt in range(tries):
            try:
                values = super().sync_read(data_name, names, normalize=normalize, num_retry=0)
            except DeviceNotConnectedError:
                raise
            except ConnectionError as e:
                last_error = e
                dropped = self.drain_input()
                logger.debug("sync read of %s failed (try %d, %d stale bytes dropped): %s",
                             data_name, attempt + 1, dropped, e)
                continue
            self.check_status(names, f"reading {data_name}")
            return values
        self.warn_about_checksums()
        raise self.failure(f"reading {data_name} failed {tries} times in a row ({_last_line(last_error)})",
                           names) from last_error

    def read(self, data_name: str, motor: str, **kwargs: Any) -> Any:
        with self._faults_named(motor):
            return super().read(data_name, motor, **kwargs)

    def write(self, data_name: str, motor: str, value: Any, **kwargs: Any) -> None:
        with self._faults_named(motor):
            super().write(data_name, motor, value, **kwargs)

    @contextmanager
    def _faults_named(self, motor: str) -> Iterator[None]:
        """LeRobot raises a bare RuntimeError for any error byte: name the hardware error when it is one."""
        try:
            yield
        except RuntimeError as e:
            if isinstance(e, ServoBusError) or not self._has_hardware_error(motor):
                raise
            raise self.failure(f"in the reply to: {_last_line(e)}", [motor]) from e

    def _names(self, motors: str | Sequence[str] | None) -> list[str]:
        if motors is None:
            return list(self.motors)
        return [motors] if isinstance(motors, str) else list(motors)

    # -- servo health ----------------------------------------------------------------------------------
    def hardware_error_bits(self, motor: str, error: int) -> list[str]:
        """The hardware errors an error byte reports for this motor (empty: none)."""
        raise NotImplementedError

    def _has_hardware_error(self, motor: str) -> bool:
        return bool(self.status.last_error.get(self.motors[motor].id, 0) & self.hardware_error_mask)

    def check_status(self, motors: list[str], what: str) -> None:
        """After a read: a servo whose reply carried a hardware error stops the caller; checksums are judged."""
        faulty = [m for m in motors if self._has_hardware_error(m)]
        if faulty:
            raise self.failure(what, faulty)
        self.warn_about_checksums()

    def warn_about_checksums(self) -> None:
        for motor, m in self.motors.items():
            corrupted, replies = self.status.corrupted_share(m.id)
            if replies >= MIN_REPLIES_FOR_RATE and corrupted > self.checksum_warning_rate * replies:
                logger.warning(
                    "%s: %s (id %d): %d of its last %d replies had a corrupted checksum (%.1f %%, above the %.1f %% "
                    "warning level); reads are retried, but check that servo's cable and connectors (and the power "
                    "supply, whose sag corrupts packets)", self.label, motor, m.id, corrupted, replies,
                    100 * corrupted / replies, 100 * self.checksum_warning_rate)
                self.status.forget_recent(m.id)

    def diagnose(self, motors: list[str]) -> tuple[list[str], dict[str, list[str]]]:
        """Ask each servo directly: (those that do not answer, {those that answer with a hardware error: errors})."""
        silent, faults = [], {}
        for motor in motors:
            self.drain_input(quiet_s=0.0005)
            error = self._ping(motor)
            if error is None:
                silent.append(motor)
            elif error & self.hardware_error_mask:
                faults[motor] = self.hardware_error_bits(motor, error)
        self.drain_input(quiet_s=0.0005)
        return silent, faults

    def _ping(self, motor: str, tries: int = 2) -> int | None:
        """The error byte of the servo's answer to a ping, None if it stays silent."""
        for _ in range(tries):
            _, comm, error = self.packet_handler.ping(self.port_handler, self.motors[motor].id)
            if comm == self.sdk_success:
                return error
        return None

    def failure(self, what: str, motors: list[str]) -> ServoBusError:
        """The error for a failed transaction, after asking `motors` whether they are silent or faulty."""
        silent, faults = self.diagnose(motors)
        if faults:
            who = "; ".join(f"{m} (id {self.motors[m].id}) reports {' and '.join(errs)}" for m, errs in faults.items())
            advice = "; ".join(dict.fromkeys(FAULT_ADVICE.get(e, "see the servo's manual")
                                             for errs in faults.values() for e in errs))
            also = f" Also not answering: {self._who(silent)}." if silent else ""
            return ServoFaultError(
                f"{self.label}: servo hardware error: {who} (seen {what}). To do: {advice}; then power-cycle the "
                f"arm (a servo keeps its torque off until it restarts).{also}", sorted(faults) + silent, faults)
        if silent:
            advice = (f"Servo(s) not answering: {self._who(silent)}. Check that servo's cable and every connector "
                      "between it and the controller board (servos are daisy-chained: one loose plug silences all "
                      "servos behind it), that the arm's power supply is on, and that the servo's id was not changed.")
        else:
            advice = ("Every servo answered a ping afterwards, so the bus is dropping or corrupting packets: check the "
                      "cables for loose contacts and the power supply (a sagging supply resets servos).")
        return ServoBusError(f"{self.label}: {what}. {advice}", silent)

    def _who(self, motors: list[str]) -> str:
        return ", ".join(f"{m} (id {self.motors[m].id})" for m in motors)

    # -- safety helpers ---------------------------------------------------------------------------------
    def torque_off(self) -> None:
        """Remove torque from every servo: one broadcast write (reaches every live servo at once), then a
        verified write per servo. Raises ServoBusError naming the servos that did not confirm."""
        self.drain_input(quiet_s=0.0005)
        first = self.motors[next(iter(self.motors))].model
        address, _ = get_address(self.model_ctrl_table, first, "Torque_Enable")
        self.packet_handler.write1ByteTxOnly(self.port_handler, BROADCAST_ID, address, 0)
        unconfirmed = []
        for motor in self.motors:
            try:
                self.disable_torque(motor, num_retry=1)
            except ServoFaultError:
                pass  # it answered (with its fault) and took the write; a faulted servo is limp anyway
            except (ConnectionError, RuntimeError):
                self.drain_input(quiet_s=0.0005)
                unconfirmed.append(motor)
        if unconfirmed:
            raise self.failure("torque off was not confirmed", unconfirmed)

    def hold(self) -> dict[str, int]:
        """Make each servo's present position its goal (raw counts, so no normalisation clipping can move
        a servo); returns them."""
        present = self.sync_read("Present_Position", normalize=False)
        self.sync_write("Goal_Position", present, normalize=False)
        return present

    def drain_input(self, quiet_s: float = 0.002, max_s: float = 0.05) -> int:
        """Read and drop whatever arrives until the line has been quiet for `quiet_s` (late replies of a
        failed transaction), then clear the input buffer. Returns the bytes dropped."""
        ser = getattr(self.port_handler, "ser", None)
        if ser is None or not self.port_handler.is_open:
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
        self.port_handler.is_using = False
        return dropped


class DynamixelServoBus(ServoBus, DynamixelMotorsBus):
    status_handler = DynamixelStatusHandler
    hardware_error_mask = DYNAMIXEL_ALERT
    sdk_success = dxl.COMM_SUCCESS

    def hardware_error_bits(self, motor: str, error: int) -> list[str]:
        """The Alert bit only says "hardware error": the servo's Hardware_Error_Status register says which."""
        if not error & DYNAMIXEL_ALERT:
            return []
        model, servo_id = self.motors[motor].model, self.motors[motor].id
        address, _ = get_address(self.model_ctrl_table, model, "Hardware_Error_Status")
        for _ in range(2):
            bits, comm, _ = self.packet_handler.read1ByteTxRx(self.port_handler, servo_id, address)
            if comm == self.sdk_success:
                return bit_names(bits, DYNAMIXEL_HARDWARE_ERRORS)
            self.drain_input(quiet_s=0.0005)
        return ["a hardware error (its Hardware_Error_Status register could not be read)"]

    def write_calibration(self, calibration_dict: dict[str, MotorCalibration], cache: bool = True) -> None:
        """LeRobot's, plus Drive_Mode: a Dynamixel reverses direction in the servo and LeRobot compares it in
        `is_calibrated`, but its write_calibration leaves it out."""
        super().write_calibration(calibration_dict, cache)
        for motor, calibration in calibration_dict.items():
            self.write("Drive_Mode", motor, calibration.drive_mode)


class FeetechServoBus(ServoBus, FeetechMotorsBus):
    status_handler = FeetechStatusHandler
    hardware_error_mask = sum(FEETECH_HARDWARE_ERRORS)
    sdk_success = scs.COMM_SUCCESS

    def hardware_error_bits(self, motor: str, error: int) -> list[str]:
        bits = error & self.hardware_error_mask
        return bit_names(bits, FEETECH_HARDWARE_ERRORS) if bits else []


def _last_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
