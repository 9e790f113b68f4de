"""Run an emulated bus in a child process, so that its responder does not share our GIL.

In-process (a thread) is what the tests use; a separate process is closer to real hardware, where
the servos cost the host no CPU at all, and is what `benchmarks/bench_bus.py` uses for its headline
numbers. The child owns the pseudo-terminal; the parent only needs its slave path.
"""

from __future__ import annotations

import multiprocessing as mp
from contextlib import contextmanager
from typing import Iterator


def _child(factory: str, max_speed: float, wire_baudrate: int | None, conn) -> None:
    from emulators import koch_bus, so_bus

    make = {"koch": koch_bus, "so": so_bus}[factory]
    with make(max_speed=max_speed) as emu:
        emu.keep_log = False
        emu.wire_baudrate = wire_baudrate
        conn.send(emu.port)
        conn.recv()  # block until the parent says stop


@contextmanager
def bus_in_subprocess(factory: str, max_speed: float = 6000.0, wire_baudrate: int | None = None) -> Iterator[str]:
    """`factory` is "koch" (Dynamixel follower) or "so" (Feetech); yields the port path.
    `wire_baudrate` (e.g. 1_000_000) makes every packet take its real-bus byte time."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(factory, max_speed, wire_baudrate, child), daemon=True)
    proc.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("emulator process did not start")
        yield parent.recv()
    finally:
        try:
            parent.send("stop")
        except (BrokenPipeError, OSError):
            pass
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
