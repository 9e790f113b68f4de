"""What every servo answered, which LeRobot 0.6.1 throws away: the status byte and the checksum.

Each status packet carries an error byte. On Dynamixel Protocol 2.0 its Alert bit (0x80) says the
servo has a hardware error (the detail is in its Hardware_Error_Status register) and its low bits
number an instruction error; on Feetech protocol 0 the byte holds the hardware-error bits themselves
(input voltage, angle sensor, overheating, overcurrent, overload). LeRobot's buses drop it on every
sync read (the SDKs' `GroupSyncRead.rxPacket` keeps only the data) and turn a corrupted reply into an
exception without saying which servo sent it.

LeRobot has no hook for either, so this module is the one place chunkbot reaches under it: the bus
(`robot.hardware.bus`) swaps its SDK packet handler for one of the subclasses below, which note the
error byte and the checksum result of every reply, per servo id, in a `StatusLog` and hand the
reply on unchanged. Both SDKs funnel every reply through `readRx` (sync reads) or `txRxPacket`
(reads, writes, pings), the two public methods overridden here.
"""

from __future__ import annotations

from collections import Counter, deque

import dynamixel_sdk as dxl
import scservo_sdk as scs
from dynamixel_sdk.protocol2_packet_handler import PKT_ID as DXL_PKT_ID
from dynamixel_sdk.protocol2_packet_handler import Protocol2PacketHandler
from scservo_sdk.protocol_packet_handler import PKT_ID as SCS_PKT_ID
from scservo_sdk.protocol_packet_handler import protocol_packet_handler

# Hardware errors by bit. Dynamixel X series: the Hardware_Error_Status register (the error byte only
# has the Alert bit); Feetech STS: the error byte itself (scservo_sdk's ERRBIT_*).
DYNAMIXEL_ALERT = 0x80
DYNAMIXEL_HARDWARE_ERRORS = {0x01: "input voltage", 0x04: "overheating", 0x08: "motor encoder",
                             0x10: "electrical shock", 0x20: "overload"}
FEETECH_HARDWARE_ERRORS = {0x01: "input voltage", 0x02: "angle sensor", 0x04: "overheating", 0x08: "overcurrent",
                           0x20: "overload"}


def bit_names(bits: int, table: dict[int, str]) -> list[str]:
    return [name for bit, name in table.items() if bits & bit] or [f"unknown error bits 0x{bits:02x}"]


class StatusLog:
    """Per servo id: the last error byte, and how many replies (and corrupted ones) it sent, in all and
    over its last `window` replies."""

    def __init__(self, window: int = 200) -> None:
        self.window = window
        self.last_error: dict[int, int] = {}
        self.replies: Counter[int] = Counter()
        self.corrupted: Counter[int] = Counter()
        self.recent: dict[int, deque[bool]] = {}  # True: that reply had a bad checksum
        self.recent_corrupted: Counter[int] = Counter()  # the Trues in `recent` (kept, not summed: read per read)

    def note(self, servo_id: int, answered: bool, corrupted: bool, error: int) -> None:
        if answered:
            self.last_error[servo_id] = error
        if answered or corrupted:
            self.replies[servo_id] += 1
            self.corrupted[servo_id] += corrupted
            recent = self.recent.setdefault(servo_id, deque(maxlen=self.window))
            if len(recent) == self.window:
                self.recent_corrupted[servo_id] -= recent[0]  # about to fall out of the window
            recent.append(corrupted)
            self.recent_corrupted[servo_id] += corrupted

    def corrupted_share(self, servo_id: int) -> tuple[int, int]:
        """(corrupted, replies) over the servo's last `window` replies."""
        return self.recent_corrupted[servo_id], len(self.recent.get(servo_id, ()))

    def forget_recent(self, servo_id: int) -> None:
        """Start the servo's window afresh (after a warning about it, so the next one is about new replies)."""
        self.recent.pop(servo_id, None)
        self.recent_corrupted.pop(servo_id, None)


class _StatusRecording:
    """Over an SDK packet handler: every reply's error byte and checksum result go to `status_log`."""

    status_log: StatusLog
    _pkt_id: int
    _success: int
    _corrupt: int
    _broadcast: int

    def readRx(self, port, servo_id, length):  # noqa: N802 - the SDK's method name
        data, result, error = super().readRx(port, servo_id, length)
        self._note(servo_id, result, error)
        return data, result, error

    def txRxPacket(self, port, txpacket):  # noqa: N802 - the SDK's method name
        rxpacket, result, error = super().txRxPacket(port, txpacket)
        if txpacket[self._pkt_id] != self._broadcast:  # a broadcast gets no reply
            self._note(txpacket[self._pkt_id], result, error)
        return rxpacket, result, error

    def _note(self, servo_id: int, result: int, error: int) -> None:
        self.status_log.note(servo_id, result == self._success, result == self._corrupt, error)


class DynamixelStatusHandler(_StatusRecording, Protocol2PacketHandler):
    _pkt_id, _success, _corrupt, _broadcast = DXL_PKT_ID, dxl.COMM_SUCCESS, dxl.COMM_RX_CORRUPT, dxl.BROADCAST_ID

    def __init__(self, status_log: StatusLog) -> None:
        super().__init__()
        self.status_log = status_log


class FeetechStatusHandler(_StatusRecording, protocol_packet_handler):
    """Protocol 0 (the SDK's byte order was set by the `scs.PacketHandler(0)` the bus made first)."""

    _pkt_id, _success, _corrupt, _broadcast = SCS_PKT_ID, scs.COMM_SUCCESS, scs.COMM_RX_CORRUPT, scs.BROADCAST_ID

    def __init__(self, status_log: StatusLog) -> None:
        super().__init__()
        self.status_log = status_log
