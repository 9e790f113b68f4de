"""Port discovery (tools.find_port: unplug/replug, probing which arm answers) and the latency-timer
helper, which must never be fatal."""

from __future__ import annotations

import pytest

from emulators import KOCH_LEADER_MODELS, koch_bus, so_bus
from robot.hardware import set_low_latency
from tools.find_port import SerialPort, format_ports, identify_arm, main, port_that_disappeared


def _port(device: str, by_id: str | None = None) -> SerialPort:
    return SerialPort(device=device, description="USB <-> Serial Converter", hwid="USB VID:PID=0403:6014",
                      by_id=by_id, latency_timer_ms=16)


def _lists(*snapshots):
    it = iter(snapshots)
    return lambda: next(it)


def test_the_port_that_vanishes_on_unplug_is_the_arms():
    arm = _port("/dev/ttyUSB1", by_id="/dev/serial/by-id/usb-FTDI_arm")
    found = port_that_disappeared(_lists([_port("/dev/ttyUSB0"), arm], [_port("/dev/ttyUSB0")]), lambda: None, settle_s=0)
    assert found == arm


def test_nothing_unplugged_is_a_clear_error():
    ports = [_port("/dev/ttyUSB0")]
    with pytest.raises(OSError, match="no port disappeared"):
        port_that_disappeared(_lists(ports, ports), lambda: None, settle_s=0)


def test_two_ports_vanishing_is_a_clear_error():
    with pytest.raises(OSError, match="several ports disappeared"):
        port_that_disappeared(_lists([_port("/dev/ttyUSB0"), _port("/dev/ttyUSB1")], []), lambda: None, settle_s=0)


def test_listing_shows_the_stable_name_and_latency():
    text = format_ports([_port("/dev/ttyUSB0", by_id="/dev/serial/by-id/usb-FTDI_x")])
    assert "/dev/serial/by-id/usb-FTDI_x" in text and "latency_timer=16 ms" in text


def test_list_only_runs_without_input(capsys):
    main(["--list_only=true"])
    assert capsys.readouterr().out.startswith("Serial ports:")


def test_latency_timer_is_skipped_on_a_pty():
    with koch_bus() as emu:
        assert set_low_latency(emu.port) is None


def test_latency_timer_on_a_missing_port_does_not_raise():
    assert set_low_latency("/dev/ttyNOPE7") is None


@pytest.mark.parametrize(
    "make_bus, expected",
    [
        (lambda: koch_bus(), "koch_follower"),
        (lambda: koch_bus(KOCH_LEADER_MODELS), "koch_leader"),
        (lambda: so_bus(), "so100/so101 (leader or follower)"),
    ],
)
def test_probe_names_the_arm_on_a_port(make_bus, expected):
    with make_bus() as emu:
        assert identify_arm(emu.port) == expected


def test_probe_of_a_port_with_no_servos_is_none():
    with so_bus() as emu:
        for servo in emu.servos.values():
            servo.silent = True
        assert identify_arm(emu.port) is None


def test_probe_reports_an_incomplete_arm():
    with koch_bus() as emu:
        emu.servos[6].silent = True
        assert "not a complete Koch or SO arm" in identify_arm(emu.port)
