"""The base of every device error, so a tool can catch one type and print its message.

It sits at the bottom of the import graph because both `calibration` (a missing file) and `robot`
(a silent servo) raise subclasses of it, and neither may import the other's package to get it.
"""

from __future__ import annotations


class RobotError(RuntimeError):
    """A robot-side failure whose message says what to do about it."""
