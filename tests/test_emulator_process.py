"""An emulated bus in a child process answers like the in-process one (used by benchmarks)."""

from __future__ import annotations

import scservo_sdk as scs

from tests.emulators.process import bus_in_subprocess


def test_bus_in_subprocess_answers_pings():
    with bus_in_subprocess("so") as port_path:
        port = scs.PortHandler(port_path)
        assert port.openPort()
        try:
            model, comm, _ = scs.PacketHandler(0).ping(port, 3)
        finally:
            port.closePort()
    assert (model, comm) == (777, scs.COMM_SUCCESS)
