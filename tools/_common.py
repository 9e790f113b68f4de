"""Shared set-up for the command-line tools: quiet, offline, readable errors."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn


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
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)
