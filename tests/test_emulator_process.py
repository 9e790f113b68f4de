"""An emulated bus in a child process answers like the in-process one (used by benchmarks)."""

from __future__ import annotations

import scservo_sdk as scs

from emulators.process import bus_in_subprocess


def test_bus_in_subprocess_answers_pings():
    with bus_in_subprocess("so") as port_path:
        port = scs.PortHandler(port_path)
        assert port.openPort()
        try:
            model, comm, _ = scs.PacketHandler(0).ping(port, 3)
        finally:
            port.closePort()
    assert (model, comm) == (777, scs.COMM_SUCCESS)


def test_wire_time_makes_a_reply_take_at_least_its_byte_time():
    import time

    with bus_in_subprocess("so", wire_baudrate=9_600) as port_path:  # 10 bits/byte: ~1 ms per byte
        port = scs.PortHandler(port_path)
        assert port.openPort()
        try:
            ph = scs.PacketHandler(0)
            # the SDK's reply timeout is a few tens of ms; on a loaded machine the emulator process can miss
            # it, so a try may time out: time the first successful one
            for _ in range(3):
                start = time.perf_counter()
                _, comm, _ = ph.read2ByteTxRx(port, 3, 56)  # 8-byte request + 8-byte reply
                elapsed = time.perf_counter() - start
                if comm == scs.COMM_SUCCESS:
                    break
                time.sleep(0.05)                 # let a late reply to the timed-out try arrive, then drop it:
                port.ser.reset_input_buffer()    # it must not answer the next try
        finally:
            port.closePort()
    assert comm == scs.COMM_SUCCESS
    assert elapsed >= 16 * 10 / 9_600
