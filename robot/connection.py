"""Disconnecting a robot or teleoperator at the end of a loop without hiding the fault that ended it.

An arm with a dead or faulty servo cannot disconnect cleanly either (torque off is not confirmed), so
a plain `finally: robot.disconnect()` replaces "wrist_flex (id 4) is not answering" by "disconnecting
failed". `disconnect(device)` raises its own failure only when nothing else is on its way out: called
while an error propagates (from a `finally`, an `except`, or cleanup callbacks run there), it logs the
failure and lets the first error be the one the person reads. `connected(device)` is the same as a
context manager.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Any, Iterator, TypeVar

log = logging.getLogger(__name__)

Device = TypeVar("Device")


def disconnect(device: Any) -> None:
    """`device.disconnect()` if it is connected; a failure while another error propagates is only logged."""
    if not device.is_connected:
        return
    in_flight = sys.exc_info()[1]  # the error being handled (or propagating through a finally), if any
    try:
        device.disconnect()
    except Exception as e:
        if in_flight is None:  # nothing else on its way out: this failure is the news
            raise
        log.warning("%s: disconnecting after the error below failed too: %s",
                    getattr(device, "name", type(device).__name__), e)


@contextmanager
def connected(device: Device, calibrate: bool = True) -> Iterator[Device]:
    """`device.connect(calibrate)`, the block, then `disconnect(device)`."""
    device.connect(calibrate=calibrate)
    try:
        yield device
    finally:
        disconnect(device)
