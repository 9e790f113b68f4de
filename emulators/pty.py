"""A servo bus on a pseudo-terminal: the transport shared by the Dynamixel and Feetech emulators.

`os.openpty()` gives a master/slave pair. The slave's path (`/dev/pts/N`) is what LeRobot opens as
its serial port, exactly as it would open `/dev/ttyUSB0`; a responder thread reads instruction
bytes from the master end, hands them to the protocol (`parse`), and writes the status packets
back. The slave fd stays open here for the emulator's whole life, so the port survives LeRobot
closing and reopening it (a pty whose last slave fd closes makes the master read EIO).

Fault injection common to both protocols:
- `servo.silent = True`: the servo ignores every packet (unplugged cable, dead servo);
- `corrupt_next_replies(n, servo_id)`: the next n status packets (from that servo) go out with a
  broken checksum, like line noise; `corrupt_every(n, servo_id)`: one in every n of them, until
  `corrupt_every(0)` (`corrupted` counts the packets broken so far);
- `servo.raise_hardware_error(kind)` (in the protocol modules): the servo reports "overload",
  "overheating", ... in the error byte of every status packet, as the real models do;
- `servo.reply_delay_s` / `reply_delay_s`: a late answer (per servo / every reply).

Wire time is not modelled unless `wire_baudrate` is set: then the replies to each instruction leave
no earlier than the instruction's and the replies' bytes take at 10 bits / byte (8N1), as on a real
bus (all at once at the end rather than streamed, which a host reading whole packets cannot tell).
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty

from emulators.servo import Servo


def _sleep_precise(seconds: float) -> None:
    """At least `seconds`. A plain sleep (overshoots by ~0.05-0.1 ms) rather than a spin: spinning
    would steal the CPU the host side of the bus needs on a small machine."""
    end = time.perf_counter() + seconds
    while (left := end - time.perf_counter()) > 0:
        time.sleep(left)


class PtyBusEmulator:
    """A bus of servos answering on a pseudo-terminal. Subclasses implement `parse`."""

    def __init__(self, servos: list[Servo]):
        self.servos: dict[int, Servo] = {s.id: s for s in servos}
        if len(self.servos) != len(servos):
            raise ValueError("two emulated servos share an id")
        self._master, self._slave = os.openpty()
        # Raw mode on both ends: no echo, no line discipline turning 0x0D into 0x0A or eating 0x03.
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._buffer = bytearray()
        self._stop_r, self._stop_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._corrupt: list[int | None] = []  # one entry per reply to corrupt; None = any servo
        self._corrupt_every: tuple[int, int | None] = (0, None)  # (n, servo id or None = any)
        self._replies_seen = 0  # replies counted towards `corrupt_every`
        self.corrupted = 0  # status packets sent with a broken checksum
        self.reply_delay_s = 0.0
        self.wire_baudrate: int | None = None  # e.g. 1_000_000 to add real-bus byte times
        self.packets_received = 0  # valid instruction packets, for tests and benchmarks
        self.instructions: list[tuple[int, int]] = []  # (instruction, target id), most recent last
        self.keep_log = True
        self.errors: list[Exception] = []  # exceptions raised while handling packets (emulator bugs)

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "PtyBusEmulator":
        self._thread = threading.Thread(target=self._serve, name=f"{type(self).__name__}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(timeout=2.0)
            self._thread = None
        for fd in (self._master, self._slave, self._stop_r, self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "PtyBusEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- fault injection -----------------------------------------------------------------------
    def corrupt_next_replies(self, count: int = 1, servo_id: int | None = None) -> None:
        with self._lock:
            self._corrupt.extend([servo_id] * count)

    def corrupt_every(self, n: int, servo_id: int | None = None) -> None:
        """Break the checksum of one in every `n` status packets (of that servo); 0 stops it."""
        with self._lock:
            self._corrupt_every = (n, servo_id)
            self._replies_seen = 0

    # ---- protocol hook --------------------------------------------------------------------------
    def parse(self, buffer: bytearray) -> list[tuple[int, bytes]]:
        """Consume complete instruction packets from `buffer` (in place); return the replies as
        (servo id, packet bytes) in the order the servos send them."""
        raise NotImplementedError

    # ---- responder thread -------------------------------------------------------------------------
    def _serve(self) -> None:
        poller = select.poll()
        poller.register(self._master, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while True:
            events = poller.poll()
            if any(fd == self._stop_r for fd, _ in events):
                return
            try:
                data = os.read(self._master, 4096)
            except OSError:  # slave side gone: nothing to serve
                return
            self._buffer.extend(data)
            try:
                replies = self.parse(self._buffer)
            except Exception as e:  # noqa: BLE001 - keep serving; tests can assert `errors` is empty
                self.errors.append(e)
                self._buffer.clear()
                continue
            if self.wire_baudrate:
                # One sleep for the instruction's and the replies' bytes together: a sleep per packet
                # would add a scheduler wake-up (~0.1 ms, far more on a loaded machine) to each.
                wire_bytes = len(data) + sum(len(reply) for _, reply in replies)
                _sleep_precise(wire_bytes * 10 / self.wire_baudrate)
            for servo_id, reply in replies:
                self._send(servo_id, reply)

    def _send(self, servo_id: int, reply: bytes) -> None:
        delay = self.reply_delay_s + self.servos[servo_id].reply_delay_s
        if delay > 0:
            _sleep_precise(delay)
        with self._lock:
            corrupt = False
            for i, target in enumerate(self._corrupt):
                if target is None or target == servo_id:
                    del self._corrupt[i]
                    corrupt = True
                    break
            every, target = self._corrupt_every
            if every and (target is None or target == servo_id):
                self._replies_seen += 1
                corrupt = corrupt or self._replies_seen % every == 0
            if corrupt:
                reply = reply[:-1] + bytes([reply[-1] ^ 0xFF])  # flip the checksum byte
                self.corrupted += 1
        os.write(self._master, reply)

    def _log(self, instruction: int, target: int) -> None:
        self.packets_received += 1
        if self.keep_log:
            self.instructions.append((instruction, target))
            if len(self.instructions) > 10_000:
                del self.instructions[:5_000]

    # ---- helpers for tests (register-frame positions, i.e. what LeRobot reads and writes) ----------
    def present_positions(self) -> dict[int, int]:
        return {i: s.present_position() for i, s in self.servos.items()}

    def goal_positions(self) -> dict[int, int]:
        return {i: s.goal_position() for i, s in self.servos.items()}

    def set_present_positions(self, positions: dict[int, int]) -> None:
        for i, value in positions.items():
            self.servos[i].set_present_position(value)
