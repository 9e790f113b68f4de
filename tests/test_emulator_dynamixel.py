"""The Dynamixel emulator answers the real `dynamixel_sdk` packets the way X-series servos do."""

from __future__ import annotations

import time

import dynamixel_sdk as dxl
import pytest

from emulators import koch_bus
from emulators.dynamixel import crc16, stuff, unstuff

GOAL, PRESENT, TORQUE, HOMING, OPERATING_MODE = 116, 132, 64, 20, 11


@pytest.fixture
def sdk():
    """(emulator, port handler, packet handler) with the port opened by the real SDK."""
    with koch_bus() as emu:
        port = dxl.PortHandler(emu.port)
        assert port.openPort()
        yield emu, port, dxl.PacketHandler(2.0)
        port.closePort()


def test_crc16_matches_the_sdk():
    packet = [0xFF, 0xFF, 0xFD, 0x00, 0x01, 0x07, 0x00, 0x02, 0x84, 0x00, 0x04, 0x00]
    assert crc16(bytes(packet)) == dxl.PacketHandler(2.0).updateCRC(0, packet, len(packet))


def test_byte_stuffing_round_trips():
    body = bytes([0x55, 0x00, 0xFF, 0xFF, 0xFD, 0x01])
    assert stuff(body) == bytes([0x55, 0x00, 0xFF, 0xFF, 0xFD, 0xFD, 0x01])
    assert unstuff(stuff(body)) == body


def test_ping_returns_each_model_number(sdk):
    _, port, ph = sdk
    models = [ph.ping(port, i) for i in range(1, 7)]
    assert [m for m, _, _ in models] == [1060, 1060, 1200, 1200, 1200, 1200]
    assert all(comm == dxl.COMM_SUCCESS for _, comm, _ in models)


def test_write_then_read_register(sdk):
    _, port, ph = sdk
    assert ph.write4ByteTxRx(port, 3, GOAL, 1234) == (dxl.COMM_SUCCESS, 0)
    value, comm, error = ph.read4ByteTxRx(port, 3, GOAL)
    assert (value, comm, error) == (1234, dxl.COMM_SUCCESS, 0)


def test_eeprom_write_refused_while_torque_on(sdk):
    emu, port, ph = sdk
    ph.write1ByteTxRx(port, 2, TORQUE, 1)
    comm, error = ph.write1ByteTxRx(port, 2, OPERATING_MODE, 4)
    assert comm == dxl.COMM_SUCCESS and error == 7  # access error
    assert emu.servos[2].get_field("Operating_Mode") == 3
    ph.write1ByteTxRx(port, 2, TORQUE, 0)
    assert ph.write1ByteTxRx(port, 2, OPERATING_MODE, 4) == (dxl.COMM_SUCCESS, 0)


def test_torque_enable_copies_present_into_goal(sdk):
    emu, port, ph = sdk
    emu.servos[1].set_present_position(3000)
    ph.write1ByteTxRx(port, 1, TORQUE, 1)
    assert emu.servos[1].goal_position() == 3000


def test_homing_offset_shifts_present_position(sdk):
    emu, port, ph = sdk
    before = emu.servos[4].present_position()
    ph.write4ByteTxRx(port, 4, HOMING, (-500) & 0xFFFFFFFF)
    value, _, _ = ph.read4ByteTxRx(port, 4, PRESENT)
    assert value == before - 500


def test_shaft_moves_toward_goal_at_max_speed(sdk):
    emu, port, ph = sdk
    servo = emu.servos[5]
    servo.max_speed = 10_000.0
    start = servo.present_position()
    ph.write1ByteTxRx(port, 5, TORQUE, 1)
    ph.write4ByteTxRx(port, 5, GOAL, start + 300)
    mid = servo.present_position()
    time.sleep(0.05)
    assert mid < start + 300
    assert servo.present_position() == start + 300


def test_sync_write_and_sync_read_reach_every_servo(sdk):
    emu, port, ph = sdk
    writer = dxl.GroupSyncWrite(port, ph, GOAL, 4)
    for i in range(1, 7):
        writer.addParam(i, list((100 * i).to_bytes(4, "little")))
    assert writer.txPacket() == dxl.COMM_SUCCESS
    time.sleep(0.01)
    assert emu.goal_positions() == {i: 100 * i for i in range(1, 7)}
    reader = dxl.GroupSyncRead(port, ph, GOAL, 4)
    for i in range(1, 7):
        reader.addParam(i)
    assert reader.txRxPacket() == dxl.COMM_SUCCESS
    assert [reader.getData(i, GOAL, 4) for i in range(1, 7)] == [100 * i for i in range(1, 7)]


def test_silent_servo_gives_no_status_packet(sdk):
    emu, port, ph = sdk
    emu.servos[6].silent = True
    _, comm, _ = ph.ping(port, 6)
    assert ph.getTxRxResult(comm) == "[TxRxResult] There is no status packet!"


def test_corrupted_reply_is_rejected_by_the_sdk(sdk):
    emu, port, ph = sdk
    emu.corrupt_next_replies(1, servo_id=2)
    _, comm, _ = ph.read4ByteTxRx(port, 2, PRESENT)
    assert ph.getTxRxResult(comm) == "[TxRxResult] Incorrect status packet!"
    _, comm, _ = ph.read4ByteTxRx(port, 2, PRESENT)
    assert comm == dxl.COMM_SUCCESS


def test_reply_delay_past_the_timeout_reads_as_no_status_packet(sdk):
    emu, port, ph = sdk
    emu.servos[3].reply_delay_s = 0.08  # the SDK waits ~34 ms for a short reply
    _, comm, _ = ph.ping(port, 3)
    assert comm == dxl.COMM_RX_TIMEOUT


def test_bulk_read_returns_each_servos_own_register(sdk):
    emu, port, ph = sdk
    emu.servos[1].set_present_position(1111)
    reader = dxl.GroupBulkRead(port, ph)
    assert reader.addParam(1, PRESENT, 4) and reader.addParam(2, OPERATING_MODE, 1)
    assert reader.txRxPacket() == dxl.COMM_SUCCESS
    assert reader.getData(1, PRESENT, 4) == 1111
    assert reader.getData(2, OPERATING_MODE, 1) == 3


def test_access_past_the_control_table_is_an_access_error(sdk):
    emu, port, ph = sdk
    _, comm, error = ph.readTxRx(port, 1, 146, 4)  # the table ends at 146 (Present_Temperature)
    assert (comm, error) == (dxl.COMM_SUCCESS, 7)
    assert ph.write4ByteTxRx(port, 1, 145, 1) == (dxl.COMM_SUCCESS, 7)
    assert emu.errors == []


HARDWARE_ERROR_STATUS = 70


def test_a_hardware_error_sets_the_alert_bit_in_every_reply_and_names_itself_in_its_register(sdk):
    emu, port, ph = sdk
    ph.write1ByteTxRx(port, 3, TORQUE, 1)
    emu.servos[3].raise_hardware_error("overload")
    value, comm, error = ph.read1ByteTxRx(port, 3, HARDWARE_ERROR_STATUS)
    assert (value, comm, error) == (0x20, dxl.COMM_SUCCESS, 0x80)
    assert ph.ping(port, 3)[2] == 0x80
    assert ph.ping(port, 2)[2] == 0  # the others are healthy


def test_an_overload_turns_torque_off_until_the_servo_is_rebooted(sdk):
    emu, port, ph = sdk
    ph.write1ByteTxRx(port, 3, TORQUE, 1)
    emu.servos[3].raise_hardware_error("overload")
    assert not emu.servos[3].torque_on
    ph.write1ByteTxRx(port, 3, TORQUE, 1)
    assert not emu.servos[3].torque_on
    emu.servos[3].clear_hardware_error()
    assert ph.write1ByteTxRx(port, 3, TORQUE, 1) == (dxl.COMM_SUCCESS, 0)
    assert emu.servos[3].torque_on


def test_corrupt_every_breaks_one_reply_in_n_of_that_servo(sdk):
    emu, port, ph = sdk
    emu.corrupt_every(4, servo_id=2)
    results = [ph.read4ByteTxRx(port, 2, PRESENT)[1] for _ in range(12)]
    assert results.count(dxl.COMM_RX_CORRUPT) == 3 and emu.corrupted == 3
    assert all(ph.read4ByteTxRx(port, 1, PRESENT)[1] == dxl.COMM_SUCCESS for _ in range(8))
    emu.corrupt_every(0)
    assert all(ph.read4ByteTxRx(port, 2, PRESENT)[1] == dxl.COMM_SUCCESS for _ in range(8))
