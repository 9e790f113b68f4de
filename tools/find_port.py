"""Find the serial port of an arm's controller board.

    python -m tools.find_port             # list serial ports, then unplug-and-replug to pick the arm's
    python -m tools.find_port --list_only=true
    python -m tools.find_port --list_only=true --probe=true   # also ask each port which arm is on it

LeRobot's `lerobot-find-port` flow (list, unplug, list again, the port that vanished is the arm's),
using pyserial's `list_ports` so only real serial devices are compared, and printing the
`/dev/serial/by-id/...` alias, which stays the same when the USB devices are re-plugged in another
order (`/dev/ttyUSB0` / `/dev/ttyACM0` numbering does not).

`--probe=true` pings servo ids 1-6 on every listed port at 1 Mbps, in Dynamixel Protocol 2.0 and in
Feetech protocol 0, and names the arm from the model numbers: a Koch follower (2 x XL430-W250 +
4 x XL330-M288) and a Koch leader (6 x XL330-M077) tell apart; SO-100/SO-101 leaders and followers
all carry STS3215s and do not. Probing writes ping packets to the ports, so it is opt-in.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from contract import ARM_TYPES, real_arm_types

BY_ID_DIR = Path("/dev/serial/by-id")


@dataclass
class FindPortConfig:
    # only list the serial ports, no unplug/replug step
    list_only: bool = False
    # ping servo ids 1-6 on each port (Dynamixel and Feetech, 1 Mbps) and name the arm found
    probe: bool = False


def _ping_ids(bus_class, port: str, ids=range(1, 7)) -> dict[int, int]:
    """Model number of each id that answers, using LeRobot's bus (no handshake, nothing written)."""
    bus = bus_class(port, {})
    bus.connect(handshake=False)
    try:
        found = {}
        for i in ids:
            model = bus.ping(i)
            if model is not None:
                found[i] = model
        return found
    finally:
        bus.port_handler.closePort()


def _arms_on(bus: str, bus_class) -> dict[tuple[int, ...], list[str]]:
    """Model numbers of ids 1..6 -> the arm types that have them (contract.arms), for one kind of bus."""
    arms: dict[tuple[int, ...], list[str]] = {}
    for name in real_arm_types():
        arm = ARM_TYPES[name]
        if arm.bus == bus:
            arms.setdefault(tuple(bus_class.model_number_table[m] for m in arm.models), []).append(name)
    return arms


def identify_arm(port: str) -> str | None:
    """Which arm answers on `port`: "koch_follower", "koch_leader", "so100/so101 (leader or
    follower)", a description of a partial/unknown set of servos, or None when nothing answers."""
    from lerobot.motors.dynamixel import DynamixelMotorsBus
    from lerobot.motors.feetech import FeetechMotorsBus

    for bus, bus_class in (("dynamixel", DynamixelMotorsBus), ("feetech", FeetechMotorsBus)):
        try:
            found = _ping_ids(bus_class, port)
        except (ConnectionError, OSError):
            return None
        if not found:
            continue
        names = _arms_on(bus, bus_class).get(tuple(found.get(i) for i in range(1, 7)))
        if names is not None:
            return _describe(names)
        protocol = "Dynamixel" if bus == "dynamixel" else "Feetech"
        return f"{protocol} servos {found} (id: model number): not a complete Koch or SO arm"
    return None


def _describe(names: list[str]) -> str:
    """One arm type by name; arm types with the same servos (SO-100/SO-101 leader and follower) as a group."""
    if len(names) == 1:
        return names[0]
    families = sorted({n.split("_")[0] for n in names})
    return f"{'/'.join(families)} (leader or follower)"


@dataclass(frozen=True)
class SerialPort:
    device: str  # /dev/ttyUSB0
    description: str  # e.g. "USB <-> Serial Converter" (FTDI, the ROBOTIS U2D2) or "USB Single Serial"
    hwid: str  # e.g. "USB VID:PID=0403:6014 SER=FT... LOCATION=1-1:1.0"
    by_id: str | None  # /dev/serial/by-id/usb-FTDI_..., stable across re-plugging
    latency_timer_ms: int | None  # FTDI adapters: 16 by default, 1 is what a fast servo loop wants


def _by_id_aliases() -> dict[str, str]:
    aliases: dict[str, str] = {}
    if BY_ID_DIR.is_dir():
        for link in sorted(BY_ID_DIR.iterdir()):
            aliases[os.path.realpath(link)] = str(link)
    return aliases


def _latency_timer(device: str) -> int | None:
    timer = Path("/sys/bus/usb-serial/devices") / os.path.basename(os.path.realpath(device)) / "latency_timer"
    try:
        return int(timer.read_text().strip())
    except (OSError, ValueError):
        return None


def list_serial_ports() -> list[SerialPort]:
    """Serial devices pyserial can see, sorted by device path."""
    from serial.tools import list_ports

    aliases = _by_id_aliases()
    ports = []
    for info in sorted(list_ports.comports(), key=lambda p: p.device):
        ports.append(
            SerialPort(
                device=info.device,
                description=info.description or "",
                hwid=info.hwid or "",
                by_id=aliases.get(os.path.realpath(info.device)),
                latency_timer_ms=_latency_timer(info.device),
            )
        )
    return ports


def format_ports(ports: list[SerialPort], arms: dict[str, str | None] | None = None) -> str:
    if not ports:
        return "No serial ports found. Is the arm's controller board plugged in (and powered, for some boards)?"
    lines = []
    for p in ports:
        line = f"  {p.device}  {p.description}  [{p.hwid}]"
        if p.latency_timer_ms is not None:
            line += f"  latency_timer={p.latency_timer_ms} ms"
        if arms is not None:
            line += f"  -> {arms.get(p.device) or 'no servo answered'}"
        lines.append(line)
        if p.by_id:
            lines.append(f"      stable name: {p.by_id}")
    return "\n".join(lines)


def port_that_disappeared(
    list_ports: Callable[[], list[SerialPort]],
    wait_for_unplug: Callable[[], None],
    settle_s: float = 0.5,
) -> SerialPort:
    """LeRobot's flow: list, let the user unplug the arm, list again; exactly one port must vanish."""
    before = {p.device: p for p in list_ports()}
    wait_for_unplug()
    time.sleep(settle_s)  # the kernel removes the device node shortly after the unplug
    after = {p.device for p in list_ports()}
    gone = sorted(set(before) - after)
    if len(gone) == 1:
        return before[gone[0]]
    if not gone:
        raise OSError(
            "no port disappeared: was the arm's USB cable unplugged (at the computer or at the board)? "
            "Run again and unplug it when asked."
        )
    raise OSError(f"several ports disappeared ({', '.join(gone)}): unplug only the arm's cable and run again")


def main(args: list[str] | None = None) -> None:
    from tools._common import parse_config

    cfg = parse_config(FindPortConfig, args, tool="find_port", doc=__doc__)
    ports = list_serial_ports()
    arms = {p.device: identify_arm(p.device) for p in ports} if cfg.probe else None
    print("Serial ports:\n" + format_ports(ports, arms))
    if cfg.list_only:
        return
    if not ports:
        raise SystemExit(1)
    try:
        port = port_that_disappeared(
            list_serial_ports, lambda: input("\nUnplug the arm's USB cable, then press Enter... ")
        )
    except OSError as e:
        raise SystemExit(f"error: {e}") from None
    except EOFError:
        raise SystemExit("error: no terminal to answer on; run it interactively, or use --list_only=true") from None
    print(f"\nThe arm's port is {port.device}")
    if port.by_id:
        print(f"  (stable name: {port.by_id} -- prefer it in --robot.port=...)")
    if port.latency_timer_ms not in (None, 1):
        print(f"  its latency timer is {port.latency_timer_ms} ms; chunkbot sets it to 1 ms when it can write it")
    print("Plug the cable back in.")


if __name__ == "__main__":
    main()
