"""Feetech STS servos (STS3215, protocol 0) on a pseudo-terminal.

Packets, as `scservo_sdk` 1.0 sends and parses them:
  instruction: FF FF | id | len | instr | params... | checksum
  status:      FF FF | id | len | error | params... | checksum
`len` = number of params + 2; checksum = ~(id + len + instr/error + params) & 0xFF.
Served: ping 0x01, read 0x02, write 0x03 (also broadcast), sync read 0x82, sync write 0x83.
(The SDK's `ping` is a ping followed by a read of Model_Number at address 3.)

Servo behaviour (STS3215 table as LeRobot 0.6.1 uses it): positions are sign-magnitude with the
sign at bit 15, Homing_Offset sign-magnitude at bit 11, and Present_Position =
(shaft - Homing_Offset) mod 4096 (Phase bit 4 clear, the setting LeRobot enforces); goals are
clamped to Min/Max_Position_Limit in position mode. Enabling torque holds the present position.
A hardware error (`raise_hardware_error("overload")`) is reported in the error byte of every status
packet (bits as `scservo_sdk` reads them); overload, overheating and overcurrent also release torque,
as the STS3215's default unloading conditions do, until the servo is power-cycled.
"""

from __future__ import annotations

import time

from emulators.pty import PtyBusEmulator
from emulators.servo import Field, Servo

BROADCAST_ID = 0xFE
PING, READ, WRITE, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x82, 0x83
STS3215_MODEL_NUMBER = 777
# error-byte bits of a status packet (scservo_sdk's ERRBIT_*)
HARDWARE_ERRORS = {"input_voltage": 1, "angle_sensor": 2, "overheating": 4, "overcurrent": 8, "overload": 32}
UNLOADING = 4 | 8 | 32  # errors that release torque (the STS3215's default unloading conditions)


def checksum(body: bytes | bytearray) -> int:
    return ~sum(body) & 0xFF


def status_packet(servo_id: int, error: int, params: bytes = b"") -> bytes:
    body = bytes([servo_id, len(params) + 2, error]) + params
    return b"\xff\xff" + body + bytes([checksum(body)])


def instruction_packet(servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    body = bytes([servo_id, len(params) + 2, instruction]) + params
    return b"\xff\xff" + body + bytes([checksum(body)])


def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    return ((1 << sign_bit) | -value) if value < 0 else value


def decode_sign_magnitude(raw: int, sign_bit: int) -> int:
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if raw >> sign_bit & 1 else magnitude


_STS_FIELDS = {
    "Firmware_Major_Version": Field(0, 1),
    "Firmware_Minor_Version": Field(1, 1),
    "Model_Number": Field(3, 2),
    "ID": Field(5, 1),
    "Baud_Rate": Field(6, 1),
    "Return_Delay_Time": Field(7, 1),
    "Min_Position_Limit": Field(9, 2),
    "Max_Position_Limit": Field(11, 2),
    "Max_Torque_Limit": Field(16, 2),
    "Phase": Field(18, 1),
    "P_Coefficient": Field(21, 1),
    "D_Coefficient": Field(22, 1),
    "I_Coefficient": Field(23, 1),
    "Protection_Current": Field(28, 2),
    "Homing_Offset": Field(31, 2),
    "Operating_Mode": Field(33, 1),
    "Overload_Torque": Field(36, 1),
    "Torque_Enable": Field(40, 1),
    "Acceleration": Field(41, 1),
    "Goal_Position": Field(42, 2),
    "Lock": Field(55, 1),
    "Present_Position": Field(56, 2),
    "Present_Velocity": Field(58, 2),
    "Present_Load": Field(60, 2),
    "Present_Voltage": Field(62, 1),
    "Present_Temperature": Field(63, 1),
    "Moving": Field(66, 1),
    "Present_Current": Field(69, 2),
    "Maximum_Acceleration": Field(85, 1),
}
_SIGN_BITS = {"Homing_Offset": 11, "Goal_Position": 15, "Present_Position": 15, "Present_Velocity": 15}


class FeetechSTSServo(Servo):
    fields = _STS_FIELDS
    table_size = 87

    def __init__(self, servo_id: int, max_speed: float = 6000.0, firmware: tuple[int, int] = (3, 10)):
        self._status_error = 0
        super().__init__(servo_id, STS3215_MODEL_NUMBER, max_speed)
        self.model = "sts3215"
        self.set_field("Firmware_Major_Version", firmware[0])
        self.set_field("Firmware_Minor_Version", firmware[1])
        self.set_field("Baud_Rate", 0)  # 1 Mbps
        self.set_field("Return_Delay_Time", 250)
        self.set_field("Min_Position_Limit", 0)
        self.set_field("Max_Position_Limit", 4095)
        self.set_field("Max_Torque_Limit", 1000)
        self.set_field("P_Coefficient", 32)
        self.set_field("D_Coefficient", 32)
        self.set_field("Lock", 1)
        self.set_field("Present_Voltage", 120)
        self.set_field("Present_Temperature", 30)
        self.set_signed("Goal_Position", self.present_from_actual(self.actual))
        self.write_present_state()

    def status_error(self) -> int:
        return self._status_error

    def raise_hardware_error(self, kind: str) -> None:
        with self.lock:
            self._refresh(time.monotonic())
            self._status_error |= HARDWARE_ERRORS[kind]
            if self._status_error & UNLOADING:
                self.set_field("Torque_Enable", 0)

    def clear_hardware_error(self) -> None:
        with self.lock:
            self._status_error = 0

    def write(self, address: int, data: bytes) -> int:
        with self.lock:
            error = super().write(address, data)
            if self._status_error & UNLOADING:  # torque stays released until a power cycle
                self.set_field("Torque_Enable", 0)
            return error

    def get_signed(self, name: str) -> int:
        bit = _SIGN_BITS.get(name)
        raw = self.get_field(name)
        return raw if bit is None else decode_sign_magnitude(raw, bit)

    def set_signed(self, name: str, value: int) -> None:
        bit = _SIGN_BITS.get(name)
        self.set_field(name, int(value) if bit is None else encode_sign_magnitude(int(value), bit))

    def present_from_actual(self, actual: float) -> int:
        return (int(round(actual)) - self.get_signed("Homing_Offset")) % self.resolution

    def actual_from_goal(self, goal: int) -> float:
        if self.get_field("Operating_Mode") == 0:
            lo, hi = self.get_field("Min_Position_Limit"), self.get_field("Max_Position_Limit")
            if hi > lo:
                goal = max(lo, min(hi, goal))
        return float((goal + self.get_signed("Homing_Offset")) % self.resolution)

    def write_present_state(self) -> None:
        self.set_signed("Present_Position", self.present_from_actual(self.actual))
        self.set_signed("Present_Velocity", int(round(self._velocity)))  # steps/s
        self.set_field("Moving", int(self._velocity != 0.0))


class FeetechBusEmulator(PtyBusEmulator):
    """Protocol 0 bus of STS servos."""

    def parse(self, buffer: bytearray) -> list[tuple[int, bytes]]:
        replies: list[tuple[int, bytes]] = []
        while True:
            start = buffer.find(b"\xff\xff")
            if start < 0:
                del buffer[: max(0, len(buffer) - 1)]
                return replies
            if start:
                del buffer[:start]
            if len(buffer) < 4:
                return replies
            if buffer[2] == 0xFF:  # FF FF FF ...: the header starts one byte later
                del buffer[:1]
                continue
            length = buffer[3]
            total = length + 4
            if length < 2:
                del buffer[:1]
                continue
            if len(buffer) < total:
                return replies
            packet = bytes(buffer[:total])
            del buffer[:total]
            if checksum(packet[2:-1]) != packet[-1]:
                continue  # dropped, as a servo does with a bad checksum
            target, instruction, params = packet[2], packet[4], packet[5:-1]
            self._log(instruction, target)
            replies.extend(self._execute(target, instruction, params))

    def _alive(self, servo_id: int) -> FeetechSTSServo | None:
        servo = self.servos.get(servo_id)
        return None if servo is None or servo.silent else servo  # type: ignore[return-value]

    def _execute(self, target: int, instruction: int, params: bytes) -> list[tuple[int, bytes]]:
        if instruction == PING:
            if target == BROADCAST_ID:
                return [(i, status_packet(i, self.servos[i].status_error())) for i in sorted(self.servos)
                        if self._alive(i)]
            servo = self._alive(target)
            return [(target, status_packet(target, servo.status_error()))] if servo else []
        if instruction == READ:
            servo = self._alive(target)
            if servo is None or len(params) != 2:
                return []
            return [(target, status_packet(target, servo.status_error(), servo.read(params[0], params[1])))]
        if instruction == WRITE:
            address, data = params[0], params[1:]
            if target == BROADCAST_ID:
                for servo in self.servos.values():
                    if not servo.silent:
                        servo.write(address, data)
                return []
            servo = self._alive(target)
            if servo is None:
                return []
            error = servo.write(address, data)
            return [(target, status_packet(target, error | servo.status_error()))]
        if instruction == SYNC_READ:
            address, length = params[0], params[1]
            out = []
            for i in params[2:]:
                servo = self._alive(i)
                if servo is not None:
                    out.append((i, status_packet(i, servo.status_error(), servo.read(address, length))))
            return out
        if instruction == SYNC_WRITE:
            address, length = params[0], params[1]
            chunk = 1 + length
            for k in range(2, len(params) - chunk + 1, chunk):
                servo = self._alive(params[k])
                if servo is not None:
                    servo.write(address, params[k + 1 : k + chunk])
            return []
        return []


def so_bus(max_speed: float = 6000.0) -> FeetechBusEmulator:
    """An SO-100/SO-101 arm's bus: six STS3215 servos, ids 1..6; not started."""
    return FeetechBusEmulator([FeetechSTSServo(i, max_speed) for i in range(1, 7)])
