"""What the link tests share: a learner-side inbox, batches with countable transitions, waiting."""

from __future__ import annotations

import time

import numpy as np

from link import BatchRejected, DeliveryState, LinkServer, TransportConfig, free_port

TOKEN = "s3cret"


def wait_for(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def batch(i: int) -> dict[str, np.ndarray]:
    return {"state": np.full((3, 4), i, np.float32), "step": np.arange(3, dtype=np.int64) + 3 * i}


class Inbox:
    """What the learner applied, in order; a batch whose meta says `bad` can never be accepted."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, dict, dict]] = []

    def __call__(self, actor: str, meta: dict, arrays: dict) -> int:
        if meta.get("bad"):
            raise BatchRejected("this batch is marked bad")
        self.batches.append((actor, meta, {k: v.copy() for k, v in arrays.items()}))
        return len(arrays["step"])

    def steps(self) -> np.ndarray:
        return np.concatenate([b[2]["step"] for b in self.batches]) if self.batches else np.zeros(0, np.int64)


def config(**kw) -> TransportConfig:
    return TransportConfig(port=kw.pop("port", None) or free_port(), **kw)


def server(cfg: TransportConfig, inbox: Inbox, session: str = "S1", journal=None) -> LinkServer:
    return LinkServer(cfg, inbox, DeliveryState(session), journal)
