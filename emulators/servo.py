"""One emulated servo: a control table (bytes at addresses) plus simple position dynamics.

The wire protocols (`dynamixel.py`, `feetech.py`) only move bytes in and out of `Servo.read` /
`Servo.write`; what the bytes mean (homing offset convention, sign encoding, which writes are
refused) lives in the model subclasses there. Dynamics are evaluated lazily, when a register is
read, so an idle emulator costs nothing: while torque is on, the shaft moves toward the goal at
`max_speed` counts per second.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    address: int
    size: int  # bytes: 1, 2 or 4, little-endian on both buses


class Servo:
    """Control table + shaft state. Subclasses map the shaft angle to the position registers."""

    #: register name -> Field, set by subclasses
    fields: dict[str, Field] = {}
    table_size: int = 256
    resolution: int = 4096
    #: status error code for an access past the end of the control table (write ignored)
    out_of_table_error: int = 0

    def __init__(self, servo_id: int, model_number: int, max_speed: float = 6000.0):
        self.table = bytearray(self.table_size)
        self.lock = threading.RLock()  # tests poke servos while the responder thread serves the bus
        self.max_speed = float(max_speed)  # encoder counts per second, while torque is on
        self.actual = float(self.resolution // 2)  # raw shaft angle in encoder counts
        self._last_update = time.monotonic()
        self._velocity = 0.0  # counts/s, last dynamics step
        self.set_field("ID", servo_id)
        self.set_field("Model_Number", model_number)
        # fault injection (read by the bus emulator)
        self.silent = False
        self.reply_delay_s = 0.0

    # ---- raw register access ------------------------------------------------------------
    @property
    def id(self) -> int:
        return self.get_field("ID")

    def get_field(self, name: str) -> int:
        f = self.fields[name]
        return int.from_bytes(self.table[f.address : f.address + f.size], "little")

    def set_field(self, name: str, value: int) -> None:
        f = self.fields[name]
        self.table[f.address : f.address + f.size] = (value & ((1 << (8 * f.size)) - 1)).to_bytes(
            f.size, "little"
        )

    def read(self, address: int, length: int) -> bytes:
        """Bytes of the control table, present-state registers refreshed first."""
        with self.lock:
            self._refresh(time.monotonic())
            return bytes(self.table[address : address + length])

    def write(self, address: int, data: bytes) -> int:
        """Store `data` at `address`; returns the protocol's error code (0 = accepted)."""
        with self.lock:
            self._refresh(time.monotonic())
            if address + len(data) > self.table_size:
                return self.out_of_table_error
            error = self.check_write(address, len(data))
            if error:
                return error
            torque_field = self.fields["Torque_Enable"]
            torque_was_on = self.torque_on
            self.table[address : address + len(data)] = data
            touched_torque = address <= torque_field.address < address + len(data)
            if touched_torque and self.torque_on and not torque_was_on:
                self.on_torque_enabled()
            return 0

    # ---- model hooks ------------------------------------------------------------------------
    def check_write(self, address: int, length: int) -> int:
        return 0

    def status_error(self) -> int:
        """The hardware-error bits this servo puts in the error byte of every status packet."""
        return 0

    def raise_hardware_error(self, kind: str) -> None:
        """Report a hardware error ("overload", "overheating", ...) from now on, as the model does."""
        raise NotImplementedError

    def clear_hardware_error(self) -> None:
        """What power-cycling the servo does: the error is gone (torque stays off)."""
        raise NotImplementedError

    def on_torque_enabled(self) -> None:
        """Real servos hold where they are when torque comes on: goal := present."""
        self.set_signed("Goal_Position", self.present_from_actual(self.actual))

    def present_from_actual(self, actual: float) -> int:
        raise NotImplementedError

    def actual_from_goal(self, goal: int) -> float:
        raise NotImplementedError

    def get_signed(self, name: str) -> int:
        raise NotImplementedError

    def set_signed(self, name: str, value: int) -> None:
        raise NotImplementedError

    def write_present_state(self) -> None:
        """Copy shaft state into the Present_* registers."""
        self.set_signed("Present_Position", self.present_from_actual(self.actual))

    # ---- dynamics -----------------------------------------------------------------------------
    @property
    def torque_on(self) -> bool:
        return self.get_field("Torque_Enable") != 0

    def _refresh(self, now: float) -> None:
        dt = now - self._last_update
        self._last_update = now
        if self.torque_on and dt > 0:
            target = self.actual_from_goal(self.get_signed("Goal_Position"))
            step = self.max_speed * dt
            delta = max(-step, min(step, target - self.actual))
            self.actual += delta
            self._velocity = delta / dt
        else:
            self._velocity = 0.0
        self.write_present_state()

    # ---- test helpers (positions in the register frame, i.e. what LeRobot reads) -------------
    def present_position(self) -> int:
        with self.lock:
            self._refresh(time.monotonic())
            return self.get_signed("Present_Position")

    def goal_position(self) -> int:
        with self.lock:
            return self.get_signed("Goal_Position")

    def set_present_position(self, value: int) -> None:
        """Move the shaft by hand so that Present_Position reads `value` (with the current homing)."""
        with self.lock:
            self._refresh(time.monotonic())
            self.actual = float(self.actual_from_goal(value))
            self.write_present_state()
