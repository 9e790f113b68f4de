"""The session's link to its learner: in this process (`LocalLink`) or on another machine
(`RemoteLink`, over the gRPC link in package `link`). The session sees one interface:

    submit(meta, arrays)   hand over a finished episode (returns once it cannot be lost)
    latest_weights()       (version, safetensors bytes) once per new version, else None
    between_episodes()     the in-process learner's updates when it has no thread of its own
    checkpoint(state)      save what a resume needs
    close()                flush and stop
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hil.learner import HILLearner
from link import ActorLink, TransportConfig
from link.store import write_atomic

log = logging.getLogger(__name__)

SESSION_STATE = "actor_session.json"
OUTBOX = "outbox"


class LearnerLink(Protocol):
    def submit(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None: ...
    def latest_weights(self) -> tuple[int, bytes] | None: ...
    def between_episodes(self) -> None: ...
    def checkpoint(self, output_dir: Path, session_state: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class LocalLink:
    """The learner in this process: updates in a background thread, or between episodes."""

    def __init__(self, learner: HILLearner, background: bool) -> None:
        self.learner = learner
        self._taken = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._updating = threading.Lock()
        if background:
            self._thread = threading.Thread(target=self._train, name="hil-learner", daemon=True)
            self._thread.start()

    def _train(self) -> None:
        try:
            while not self._stop.is_set():
                if self.learner.updates_due() > 0:
                    with self._updating:  # a checkpoint waits for the update in progress
                        self.learner.update()
                else:
                    time.sleep(0.01)
        except BaseException as e:  # surfaced to the session at the next episode boundary  # noqa: BLE001
            self._error = e

    def submit(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.learner.add_episode(meta, arrays)

    def latest_weights(self) -> tuple[int, bytes] | None:
        w = self.learner.weights()
        if w is None or w[0] == self._taken:
            return None
        self._taken = w[0]
        return w

    def between_episodes(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"the learner thread failed: {self._error}") from self._error
        if self._thread is None:
            self.learner.run_due_updates()

    def checkpoint(self, output_dir: Path, session_state: dict[str, Any]) -> None:
        with self._updating:
            self.learner.save(output_dir, {"session": session_state})

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)


class RemoteLink:
    """The learner elsewhere. Episodes go to the link's outbox on disk (`<output_dir>/outbox`) before
    `submit` returns, so a SIGKILL loses at most the episode in progress; `--resume=true` sends what
    the learner had not acknowledged, under whatever token the actor has then."""

    def __init__(self, config: TransportConfig, output_dir: str | Path, resume: bool = False,
                 flush_timeout_s: float = 10.0, weights_wait_s: float = 5.0) -> None:
        self.output_dir = Path(output_dir)
        self.flush_timeout_s = flush_timeout_s
        outbox = self.output_dir / OUTBOX
        if outbox.exists() and not resume:
            raise FileExistsError(f"{self.output_dir} already holds an actor's outbox: pass --resume=true to "
                                  "continue it (unsent episodes go out then), or choose another --output_dir")
        self.client = ActorLink(config, outbox, weights_wait_s=weights_wait_s)
        if len(self.client.outbox):
            log.info("sending %d episode batch(es) the learner had not acknowledged", len(self.client.outbox))
        self.client.start()

    def saved_state(self) -> dict[str, Any]:
        """The session's position (episode, env steps) when it last checkpointed."""
        path = self.output_dir / SESSION_STATE
        return json.loads(path.read_text()) if path.exists() else {}

    def submit(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.client.submit(meta, arrays)

    def latest_weights(self) -> tuple[int, bytes] | None:
        return self.client.latest_weights()

    def between_episodes(self) -> None:
        pass

    def checkpoint(self, output_dir: Path, session_state: dict[str, Any]) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.output_dir / SESSION_STATE, json.dumps(session_state, indent=2).encode())

    @property
    def problem(self) -> str | None:
        """Why episodes are still waiting for the learner, if they are."""
        if not self.client.pending:
            return None
        return self.client.problem or (f"{self.client.pending} episode batch(es) not acknowledged by the learner at "
                                       f"{self.client.config.target}; they are kept in {self.client.outbox.dir} and "
                                       "go out with --resume=true")

    def close(self) -> None:
        self.client.wait_acked(self.flush_timeout_s)
        problem = self.problem
        self.client.stop()
        if problem:
            log.warning("%s", problem)
