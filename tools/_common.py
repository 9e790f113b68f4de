"""Shared set-up for the command-line tools: quiet, offline, one-line errors (the command line itself
is read by `tools._cli.parse_config`, re-exported here)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator, NoReturn

from tools._cli import parse_config  # noqa: F401  (the one way a tool reads its command line)

# CHUNKBOT_TRACEBACK=1 shows the traceback behind a one-line error (for a bug report).
TRACEBACK_ENV = "CHUNKBOT_TRACEBACK"


def init_tool() -> None:
    # Nothing in chunkbot downloads at run time; make the Hugging Face libraries fail fast offline
    # instead of retrying the network when a local dataset is incomplete.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("MUJOCO_GL", "egl")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("OpenGL", "datasets", "filelock", "urllib3"):  # third-party INFO chatter
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 2) -> NoReturn:
    """End the tool with `error: <message>` on one line (exit code 2: the command line, 1: at run time)."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(code)


@contextlib.contextmanager
def user_errors(*more: type[BaseException], code: int = 1) -> Iterator[None]:
    """What a person can cause at run time (a missing file, a taken or absent port, an uncalibrated
    arm, a bus that stops answering, a bad value) ends the tool with one line that says what to do:
    those errors' messages are written for that. Anything else is a bug and keeps its traceback."""
    from contract import RobotError

    try:
        yield
    except (ValueError, OSError, RobotError, *more) as e:
        if os.environ.get(TRACEBACK_ENV):
            raise
        fail(str(e) or type(e).__name__, code=code)
