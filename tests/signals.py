"""Helpers for tests that press Ctrl-C on a tool running in a subprocess."""

import signal


def ctrl_c_live() -> None:
    """Popen preexec_fn: give the child SIGINT's default action. A test runner started in the background
    by a non-interactive shell inherits SIGINT ignored, and Python then installs no KeyboardInterrupt
    handler in the child, so the test's Ctrl-C would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
