"""Dynamixel Protocol 2.0 servos (X series: XL330-M077/M288, XL430-W250) on a pseudo-terminal.

Packets, as `dynamixel_sdk` 3.8 sends and parses them:
  instruction: FF FF FD 00 | id | len_l len_h | instr | params... | crc_l crc_h
  status:      FF FF FD 00 | id | len_l len_h | 0x55  | error | params... | crc_l crc_h
`len` counts instr/0x55 + (error) + params + CRC; the CRC is CRC-16 (poly 0x8005, init 0) over
everything before it; "FF FF FD" inside a packet body is byte-stuffed as "FF FF FD FD".
Served: ping 0x01 (also broadcast), read 0x02, write 0x03 (also broadcast), sync read 0x82,
sync write 0x83, bulk read 0x92. Anything else gets an instruction error.

Servo behaviour copied from the ROBOTIS X-series manual: Present_Position = shaft + Homing_Offset
(Drive_Mode bit 0 reverses the shaft direction); EEPROM (addresses < 64) refuses writes while
torque is on (access error 7); enabling torque copies Present_Position into Goal_Position;
position mode (3) clamps goals to Min/Max_Position_Limit, extended modes (4, 5) do not.
A hardware error (`raise_hardware_error("overload")`) sets its bit in Hardware_Error_Status and the
Alert bit (0x80) in the error byte of every status packet; if the bit is in Shutdown (overload,
overheating and electrical shock by default) torque goes off and stays off until the servo is
rebooted (`clear_hardware_error()`).
"""

from __future__ import annotations

import time

from emulators.pty import PtyBusEmulator
from emulators.servo import Field, Servo

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
STATUS = 0x55
PING, READ, WRITE, SYNC_READ, SYNC_WRITE, BULK_READ = 0x01, 0x02, 0x03, 0x82, 0x83, 0x92
ERR_INSTRUCTION, ERR_CRC, ERR_DATA_LENGTH, ERR_ACCESS = 2, 3, 5, 7
ALERT = 0x80  # error byte: "check Hardware_Error_Status"
# Hardware_Error_Status bits (ROBOTIS X-series e-manual)
HARDWARE_ERRORS = {"input_voltage": 0x01, "overheating": 0x04, "motor_encoder": 0x08, "electrical_shock": 0x10,
                   "overload": 0x20}
DEFAULT_SHUTDOWN = 0x34  # overload, electrical shock, overheating

MODEL_NUMBERS = {"xl330-m077": 1190, "xl330-m288": 1200, "xl430-w250": 1060}
EEPROM_END = 64  # first RAM address (Torque_Enable)


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    """Insert 0xFD after every FF FF FD in the body (the header itself is not stuffed)."""
    out = bytearray()
    for b in body:
        out.append(b)
        if b == 0xFD and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF:
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(body):
        out.append(body[i])
        if body[i] == 0xFD and i >= 2 and body[i - 2] == 0xFF and body[i - 1] == 0xFF and i + 1 < len(body) and body[i + 1] == 0xFD:  # noqa: E501
            i += 1  # skip the stuffed copy
        i += 1
    return bytes(out)


def status_packet(servo_id: int, error: int, params: bytes = b"") -> bytes:
    body = stuff(bytes([STATUS, error]) + params)
    length = len(body) + 2
    packet = HEADER + bytes([servo_id, length & 0xFF, length >> 8]) + body
    crc = crc16(packet)
    return packet + bytes([crc & 0xFF, crc >> 8])


def instruction_packet(servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    """What the SDK sends; used by tests of the emulator itself."""
    body = stuff(bytes([instruction]) + params)
    length = len(body) + 2
    packet = HEADER + bytes([servo_id, length & 0xFF, length >> 8]) + body
    crc = crc16(packet)
    return packet + bytes([crc & 0xFF, crc >> 8])


_X_FIELDS = {
    "Model_Number": Field(0, 2),
    "Firmware_Version": Field(6, 1),
    "ID": Field(7, 1),
    "Baud_Rate": Field(8, 1),
    "Return_Delay_Time": Field(9, 1),
    "Drive_Mode": Field(10, 1),
    "Operating_Mode": Field(11, 1),
    "Homing_Offset": Field(20, 4),
    "Max_Position_Limit": Field(48, 4),
    "Min_Position_Limit": Field(52, 4),
    "Shutdown": Field(63, 1),
    "Torque_Enable": Field(64, 1),
    "Status_Return_Level": Field(68, 1),
    "Hardware_Error_Status": Field(70, 1),
    "Position_D_Gain": Field(80, 2),
    "Position_I_Gain": Field(82, 2),
    "Position_P_Gain": Field(84, 2),
    "Goal_Position": Field(116, 4),
    "Present_Velocity": Field(128, 4),
    "Present_Position": Field(132, 4),
    "Present_Input_Voltage": Field(144, 2),
    "Present_Temperature": Field(146, 1),
}
_SIGNED = {"Homing_Offset", "Goal_Position", "Present_Velocity", "Present_Position"}


class DynamixelXServo(Servo):
    """An X-series servo (the one control table LeRobot uses for XL330 and XL430)."""

    fields = _X_FIELDS
    table_size = 147
    out_of_table_error = ERR_ACCESS

    def __init__(self, servo_id: int, model: str = "xl330-m288", max_speed: float = 6000.0):
        super().__init__(servo_id, MODEL_NUMBERS[model], max_speed)
        self.model = model
        # factory defaults (ROBOTIS e-manual)
        self.set_field("Firmware_Version", 52)
        self.set_field("Baud_Rate", 3)  # 1 Mbps as LeRobot expects (factory is 57600; assume set up)
        self.set_field("Return_Delay_Time", 250)
        self.set_field("Operating_Mode", 3)
        self.set_field("Max_Position_Limit", 4095)
        self.set_field("Min_Position_Limit", 0)
        self.set_field("Status_Return_Level", 2)
        self.set_field("Shutdown", DEFAULT_SHUTDOWN)
        self.set_field("Position_P_Gain", 400 if model.startswith("xl330") else 640)
        self.set_field("Present_Input_Voltage", 50 if model.startswith("xl330") else 120)
        self.set_field("Present_Temperature", 30)
        self.set_signed("Goal_Position", self.present_from_actual(self.actual))
        self.write_present_state()

    def get_signed(self, name: str) -> int:
        f = self.fields[name]
        return int.from_bytes(self.table[f.address : f.address + f.size], "little", signed=True)

    def set_signed(self, name: str, value: int) -> None:
        f = self.fields[name]
        self.table[f.address : f.address + f.size] = int(value).to_bytes(f.size, "little", signed=True)

    def _direction(self) -> int:
        return -1 if self.get_field("Drive_Mode") & 1 else 1

    def present_from_actual(self, actual: float) -> int:
        return int(round(self._direction() * actual)) + self.get_signed("Homing_Offset")

    def actual_from_goal(self, goal: int) -> float:
        if self.get_field("Operating_Mode") == 3:  # joint mode honours the position limits
            lo, hi = self.get_field("Min_Position_Limit"), self.get_field("Max_Position_Limit")
            goal = max(lo, min(hi, goal))
        return float(self._direction() * (goal - self.get_signed("Homing_Offset")))

    def check_write(self, address: int, length: int) -> int:
        return ERR_ACCESS if address < EEPROM_END and self.torque_on else 0

    def write(self, address: int, data: bytes) -> int:
        with self.lock:
            error = super().write(address, data)
            if self._shut_down():  # torque cannot come back on until a reboot
                self.set_field("Torque_Enable", 0)
            return error

    def _shut_down(self) -> bool:
        return bool(self.get_field("Hardware_Error_Status") & self.get_field("Shutdown"))

    def status_error(self) -> int:
        return ALERT if self.get_field("Hardware_Error_Status") else 0

    def raise_hardware_error(self, kind: str) -> None:
        with self.lock:
            self._refresh(time.monotonic())
            self.set_field("Hardware_Error_Status", self.get_field("Hardware_Error_Status") | HARDWARE_ERRORS[kind])
            if self._shut_down():
                self.set_field("Torque_Enable", 0)

    def clear_hardware_error(self) -> None:
        with self.lock:
            self.set_field("Hardware_Error_Status", 0)

    def write_present_state(self) -> None:
        self.set_signed("Present_Position", self.present_from_actual(self.actual))
        # Present_Velocity unit: 0.229 rev/min
        rpm = self._direction() * self._velocity / self.resolution * 60.0
        self.set_signed("Present_Velocity", int(round(rpm / 0.229)))


class DynamixelBusEmulator(PtyBusEmulator):
    """Protocol 2.0 bus of X-series servos."""

    def parse(self, buffer: bytearray) -> list[tuple[int, bytes]]:
        replies: list[tuple[int, bytes]] = []
        while True:
            start = buffer.find(HEADER)
            if start < 0:
                # keep a possible partial header
                del buffer[: max(0, len(buffer) - 3)]
                return replies
            if start:
                del buffer[:start]
            if len(buffer) < 7:
                return replies
            length = buffer[5] | (buffer[6] << 8)
            total = 7 + length
            if length < 3 or length > 1024:
                del buffer[:1]
                continue
            if len(buffer) < total:
                return replies
            packet = bytes(buffer[:total])
            del buffer[:total]
            if crc16(packet[:-2]) != (packet[-2] | (packet[-1] << 8)):
                continue  # a real servo drops a packet with a bad CRC silently
            target = packet[4]
            body = unstuff(packet[7:-2])
            self._log(body[0], target)
            replies.extend(self._execute(target, body[0], body[1:]))

    def _alive(self, servo_id: int) -> DynamixelXServo | None:
        servo = self.servos.get(servo_id)
        return None if servo is None or servo.silent else servo  # type: ignore[return-value]

    def _execute(self, target: int, instruction: int, params: bytes) -> list[tuple[int, bytes]]:
        if instruction == PING:
            ids = sorted(self.servos) if target == BROADCAST_ID else [target]
            out = []
            for i in ids:
                servo = self._alive(i)
                if servo is not None:
                    model = servo.get_field("Model_Number")
                    fw = servo.get_field("Firmware_Version")
                    out.append((i, status_packet(i, servo.status_error(), bytes([model & 0xFF, model >> 8, fw]))))
            return out
        if instruction == READ:
            servo = self._alive(target)
            if servo is None or len(params) != 4:
                return []
            address, length = params[0] | params[1] << 8, params[2] | params[3] << 8
            if address + length > servo.table_size:
                return [(target, status_packet(target, ERR_ACCESS | servo.status_error()))]
            return [(target, status_packet(target, servo.status_error(), servo.read(address, length)))]
        if instruction == WRITE:
            address, data = params[0] | params[1] << 8, params[2:]
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
            address, length = params[0] | params[1] << 8, params[2] | params[3] << 8
            out = []
            for i in params[4:]:
                servo = self._alive(i)
                if servo is not None:
                    out.append((i, status_packet(i, servo.status_error(), servo.read(address, length))))
            return out
        if instruction == SYNC_WRITE:
            address, length = params[0] | params[1] << 8, params[2] | params[3] << 8
            chunk = 1 + length
            for k in range(4, len(params) - chunk + 1, chunk):
                servo = self._alive(params[k])
                if servo is not None:
                    servo.write(address, params[k + 1 : k + chunk])
            return []
        if instruction == BULK_READ:
            out = []
            for k in range(0, len(params) - 4, 5):
                i = params[k]
                address, length = params[k + 1] | params[k + 2] << 8, params[k + 3] | params[k + 4] << 8
                servo = self._alive(i)
                if servo is not None:
                    out.append((i, status_packet(i, servo.status_error(), servo.read(address, length))))
            return out
        if target != BROADCAST_ID and self._alive(target) is not None:
            return [(target, status_packet(target, ERR_INSTRUCTION | self.servos[target].status_error()))]
        return []


KOCH_FOLLOWER_MODELS = ("xl430-w250", "xl430-w250", "xl330-m288", "xl330-m288", "xl330-m288", "xl330-m288")
KOCH_LEADER_MODELS = ("xl330-m077",) * 6


def koch_bus(models: tuple[str, ...] = KOCH_FOLLOWER_MODELS, max_speed: float = 6000.0) -> DynamixelBusEmulator:
    """A Koch arm's bus: servo ids 1..6 with the given models (follower by default); not started."""
    return DynamixelBusEmulator(
        [DynamixelXServo(i + 1, model, max_speed) for i, model in enumerate(models)]
    )
