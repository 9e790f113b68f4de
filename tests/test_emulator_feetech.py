"""The Feetech emulator answers the real `scservo_sdk` packets the way STS3215 servos do."""

from __future__ import annotations

import time

import pytest
import scservo_sdk as scs

from emulators import so_bus
from emulators.feetech import decode_sign_magnitude, encode_sign_magnitude

GOAL, PRESENT, TORQUE, HOMING, MODEL = 42, 56, 40, 31, 3


@pytest.fixture
def sdk():
    with so_bus() as emu:
        port = scs.PortHandler(emu.port)
        assert port.openPort()
        yield emu, port, scs.PacketHandler(0)
        port.closePort()


def test_sign_magnitude_round_trips():
    assert encode_sign_magnitude(-5, 11) == (1 << 11) | 5
    assert decode_sign_magnitude(encode_sign_magnitude(-1234, 15), 15) == -1234
    assert decode_sign_magnitude(encode_sign_magnitude(77, 15), 15) == 77


def test_ping_returns_sts3215_model_number(sdk):
    _, port, ph = sdk
    for i in range(1, 7):
        model, comm, error = ph.ping(port, i)
        assert (model, comm, error) == (777, scs.COMM_SUCCESS, 0)


def test_homing_offset_is_subtracted_from_present_position(sdk):
    emu, port, ph = sdk
    emu.servos[2].set_present_position(2500)
    ph.write2ByteTxRx(port, 2, HOMING, encode_sign_magnitude(-300, 11))
    value, _, _ = ph.read2ByteTxRx(port, 2, PRESENT)
    assert decode_sign_magnitude(value, 15) == 2800  # present = actual - offset


def test_goal_is_clamped_to_position_limits(sdk):
    emu, port, ph = sdk
    servo = emu.servos[4]
    servo.max_speed = 1e6
    servo.set_field("Min_Position_Limit", 1000)
    servo.set_field("Max_Position_Limit", 3000)
    ph.write1ByteTxRx(port, 4, TORQUE, 1)
    ph.write2ByteTxRx(port, 4, GOAL, 3900)
    time.sleep(0.01)
    assert servo.present_position() == 3000


def test_sync_write_and_sync_read_reach_every_servo(sdk):
    emu, port, ph = sdk
    writer = scs.GroupSyncWrite(port, ph, GOAL, 2)
    for i in range(1, 7):
        writer.addParam(i, [(300 * i) & 0xFF, (300 * i) >> 8])
    assert writer.txPacket() == scs.COMM_SUCCESS
    time.sleep(0.01)
    assert emu.goal_positions() == {i: 300 * i for i in range(1, 7)}
    reader = scs.GroupSyncRead(port, ph, GOAL, 2)
    for i in range(1, 7):
        reader.addParam(i)
    assert reader.txRxPacket() == scs.COMM_SUCCESS
    assert [reader.getData(i, GOAL, 2) for i in range(1, 7)] == [300 * i for i in range(1, 7)]


def test_silent_servo_gives_no_status_packet(sdk):
    emu, port, ph = sdk
    emu.servos[1].silent = True
    _, comm, _ = ph.read2ByteTxRx(port, 1, PRESENT)
    assert ph.getTxRxResult(comm) == "[TxRxResult] There is no status packet!"


def test_corrupted_reply_is_rejected_then_next_read_succeeds(sdk):
    emu, port, ph = sdk
    emu.corrupt_next_replies(1)
    _, comm, _ = ph.read2ByteTxRx(port, 5, MODEL)
    assert comm == scs.COMM_RX_CORRUPT
    value, comm, _ = ph.read2ByteTxRx(port, 5, MODEL)
    assert (value, comm) == (777, scs.COMM_SUCCESS)


def test_a_hardware_error_is_in_the_error_byte_of_every_reply(sdk):
    emu, port, ph = sdk
    emu.servos[4].raise_hardware_error("overheating")
    _, comm, error = ph.read2ByteTxRx(port, 4, PRESENT)
    assert (comm, error) == (scs.COMM_SUCCESS, 4)
    assert "Overheat" in ph.getRxPacketError(error)
    assert ph.read2ByteTxRx(port, 3, PRESENT)[2] == 0


def test_an_overload_releases_torque_until_a_power_cycle(sdk):
    emu, port, ph = sdk
    ph.write1ByteTxRx(port, 4, TORQUE, 1)
    emu.servos[4].raise_hardware_error("overload")
    assert not emu.servos[4].torque_on
    assert ph.write1ByteTxRx(port, 4, TORQUE, 1) == (scs.COMM_SUCCESS, 32)
    assert not emu.servos[4].torque_on
    emu.servos[4].clear_hardware_error()
    ph.write1ByteTxRx(port, 4, TORQUE, 1)
    assert emu.servos[4].torque_on


def test_corrupt_every_breaks_one_reply_in_n(sdk):
    emu, port, ph = sdk
    emu.corrupt_every(5)
    results = [ph.read2ByteTxRx(port, 1 + k % 6, PRESENT)[1] for k in range(20)]
    assert results.count(scs.COMM_RX_CORRUPT) == 4 and emu.corrupted == 4
