"""Time one 6-servo sync read + sync write through LeRobot on the emulated buses, against wire time.

    python -m benchmarks.bench_bus [--iterations 2000]

For the Koch follower (Dynamixel Protocol 2.0) and the SO-101 follower (Feetech protocol 0), both at
1 Mbps, with LeRobot's own drivers behind our adapters:
- "bus": `bus.sync_read("Present_Position")` + `bus.sync_write("Goal_Position", ...)` (normalised,
  as LeRobot's get_observation / send_action do them);
- "robot": `arm.get_observation()` + `arm.send_action(...)` through our adapter (adds LeRobot's
  dict handling and our retry wrapper).
The emulator runs in a separate process ("process", closest to real servos, which cost the host no
CPU), as a thread in this process ("thread", as in the tests: it shares our GIL), or in a separate
process that also spends each packet's wire time before acting on it / answering ("wire").

The wire-time limit is what the bytes alone take on a real bus: instruction + 6 status packets +
sync write, 10 bits per byte (8N1) at the baud rate, return delay 0 (LeRobot sets it). In the
"process" and "thread" modes the emulator answers at once, so the time measured is host software
(SDK, LeRobot, pty, emulator); "wire" adds the byte times, which is what a real bus costs before USB
latency (FTDI latency timer: 16 ms by default, 1 ms once set). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from lerobot.motors import MotorCalibration

from calibration import save_calibration
from emulators import koch_bus, so_bus
from emulators.process import bus_in_subprocess
from robot.config import robot_config_for
from robot.interface import ACTION_NAMES, MOTOR_NAMES

BAUD = 1_000_000
BITS_PER_BYTE = 10  # start + 8 data + stop
N_SERVOS = 6


def dynamixel_bytes(n: int = N_SERVOS, data: int = 4) -> int:
    """Protocol 2.0: sync read = 14 + n; each status = 11 + data; sync write = 14 + n * (1 + data)."""
    return (14 + n) + n * (11 + data) + (14 + n * (1 + data))


def feetech_bytes(n: int = N_SERVOS, data: int = 2) -> int:
    """Protocol 0: sync read = 8 + n; each status = 6 + data; sync write = 8 + n * (1 + data)."""
    return (8 + n) + n * (6 + data) + (8 + n * (1 + data))


def wire_ms(n_bytes: int, baud: int = BAUD) -> float:
    return n_bytes * BITS_PER_BYTE / baud * 1e3


@contextmanager
def _emulated(factory: str, mode: str):
    if mode in ("process", "wire"):
        with bus_in_subprocess(factory, wire_baudrate=BAUD if mode == "wire" else None) as port:
            yield port
    else:
        with (koch_bus() if factory == "koch" else so_bus()) as emu:
            emu.keep_log = False
            yield emu.port


def _time_loop(step, iterations: int) -> list[float]:
    for _ in range(50):  # warm-up
        step()
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        step()
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples


def measure(robot_type: str, factory: str, mode: str, iterations: int, cal_dir: Path) -> dict[str, list[float]]:
    with _emulated(factory, mode) as port:
        arm = robot_config_for(robot_type, port=port, id="bench", calibration_dir=cal_dir).build()
        arm.connect()
        try:
            bus = arm.bus
            goal = {m: 10.0 for m in MOTOR_NAMES}
            action = {n: 10.0 for n in ACTION_NAMES}

            def bus_step() -> None:
                bus.sync_read("Present_Position")
                bus.sync_write("Goal_Position", goal)

            def robot_step() -> None:
                arm.get_observation()
                arm.send_action(action)

            return {"bus": _time_loop(bus_step, iterations), "robot": _time_loop(robot_step, iterations)}
        finally:
            arm.disconnect()


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    # "wire" sleeps for each transaction's byte time in the emulator; on a loaded machine the
    # scheduler's wake-up latency (ms) dominates it, so it is not in the default set
    parser.add_argument("--modes", default="process,thread", help="comma-separated: process, thread, wire")
    args = parser.parse_args()

    cal_dir = Path(tempfile.mkdtemp(prefix="bench_bus_"))
    cal = {m: MotorCalibration(id=i + 1, drive_mode=0, homing_offset=0, range_min=1000, range_max=3000)
           for i, m in enumerate(MOTOR_NAMES)}
    save_calibration(cal, cal_dir / "bench.json")

    arms = [
        ("koch_follower", "koch", "Dynamixel P2.0", dynamixel_bytes()),
        ("so101_follower", "so", "Feetech P0", feetech_bytes()),
    ]
    print(f"6 servos, {BAUD // 1000} kbps, {args.iterations} iterations; times in ms (read + write)\n")
    print("| arm | bus | emulator | path | median | p90 | p99 | wire limit | median / wire |")
    print("|---|---|---|---|---|---|---|---|---|")
    for robot_type, factory, protocol, n_bytes in arms:
        limit = wire_ms(n_bytes)
        for mode in args.modes.split(","):
            results = measure(robot_type, factory, mode, args.iterations, cal_dir)
            for path, samples in results.items():
                med = statistics.median(samples)
                print(f"| {robot_type} | {protocol} | {mode} | {path} | {med:.3f} | {_pct(samples, 0.9):.3f} | "
                      f"{_pct(samples, 0.99):.3f} | {limit:.2f} ({n_bytes} B) | {med / limit:.2f} |")


if __name__ == "__main__":
    main()
