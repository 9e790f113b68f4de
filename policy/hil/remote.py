"""The learner on another machine: the actor's link to it, and the learner's serving loop.

    learner machine:  python -m tools.learner --output_dir=outputs/hil/learner --transport.host=0.0.0.0 \
                          --transport.token=$TOKEN --config-path=policy.json
    robot machine:    python -m tools.actor --robot.type=so101_follower ... --teleop.type=so101_leader ... \
                          --transport.host=<learner ip> --transport.token=$TOKEN --output_dir=outputs/hil/actor

The actor keeps every episode batch until the learner acknowledges it, also across its own
restarts (unacknowledged batches are saved to `pending_batches.bin` on exit and resent by
`--resume=true`); the learner checkpoints its buffers together with how far it has read each
actor's stream, so a restarted learner neither loses nor repeats what it had.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from policy.checkpoint import last_checkpoint
from policy.config import QChunkSACConfig
from policy.hil.config import _small_policy
from policy.hil.learner import HILLearner, HILLearnerConfig
from policy.transport import ActorClient, LearnerServer, TransportConfig, read_messages, write_messages

log = logging.getLogger(__name__)

ACTOR_STATE = "actor_state.json"
PENDING = "pending_batches.bin"


class RemoteLink:
    """`LearnerLink` over the transport (see policy.hil.session)."""

    def __init__(self, config: TransportConfig, output_dir: str | Path, resume: bool = False,
                 flush_timeout_s: float = 10.0, weights_poll_s: float = 1.0) -> None:
        self.output_dir = Path(output_dir)
        self.flush_timeout_s = flush_timeout_s
        state = self.saved_state() if resume else {}
        self.client = ActorClient(config, state.get("actor_id"), int(state.get("next_seq", 0)), weights_poll_s)
        pending = self.output_dir / PENDING
        if resume and pending.exists():
            messages = read_messages(pending)
            self.client.restore_pending(messages)
            log.info("resending %d episode batch(es) the learner had not acknowledged", len(messages))
        self.client.start()

    def saved_state(self) -> dict[str, Any]:
        path = self.output_dir / ACTOR_STATE
        return json.loads(path.read_text()) if path.exists() else {}

    def submit(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.client.send_transitions(arrays, header)

    def latest_weights(self) -> tuple[int, bytes] | None:
        return self.client.latest_weights()

    def between_episodes(self) -> None:
        pass

    def checkpoint(self, output_dir: Path, session_state: dict[str, Any]) -> None:
        self._session_state = session_state
        self._save()

    def _save(self) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        state = {"actor_id": self.client.actor_id, "next_seq": self.client.next_seq,
                 "session": getattr(self, "_session_state", self.saved_state().get("session", {}))}
        tmp = self.output_dir / (ACTOR_STATE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.output_dir / ACTOR_STATE)
        pending = self.client.pending_messages()
        if pending:
            write_messages(self.output_dir / PENDING, pending)
        else:
            (self.output_dir / PENDING).unlink(missing_ok=True)

    def close(self) -> None:
        if not self.client.wait_acked(self.flush_timeout_s):
            log.warning("%d episode batch(es) not acknowledged by the learner at %s: saved to %s, resent by "
                        "--resume=true", self.client.pending, self.client.config.endpoint, self.output_dir / PENDING)
        self._save()
        self.client.stop()


@dataclass
class LearnerServiceConfig:
    policy: QChunkSACConfig = field(default_factory=_small_policy)
    learner: HILLearnerConfig = field(default_factory=HILLearnerConfig)
    transport: TransportConfig = field(default_factory=TransportConfig)
    output_dir: Path = Path("outputs/hil/learner")
    checkpoint_every_s: float = 300.0
    resume: bool = False


def open_service_learner(cfg: LearnerServiceConfig) -> HILLearner:
    out = Path(cfg.output_dir)
    if last_checkpoint(out) is not None:
        if not cfg.resume:
            raise FileExistsError(f"{out} already holds a learner; pass --resume=true to continue it, or choose "
                                  "another --output_dir")
        return HILLearner.resume(out, cfg.learner)[0]
    return HILLearner(cfg.policy, cfg.learner)


def serve_learner(cfg: LearnerServiceConfig, stop: threading.Event | None = None,
                  ready: threading.Event | None = None) -> HILLearner:
    """Receive episodes, train, publish weights until `stop` (or Ctrl-C); checkpoint on the way out."""
    stop = stop or threading.Event()
    learner = open_service_learner(cfg)
    Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
    learner.metrics_path = Path(cfg.output_dir) / "metrics.jsonl"

    def on_transitions(actor: str, header: dict, arrays: dict) -> None:
        try:
            learner.add_episode(header, arrays, (actor, int(header["seq"])))
        except (KeyError, TypeError) as e:
            raise ValueError(f"not an episode batch ({type(e).__name__}: {e})") from None

    server = LearnerServer(cfg.transport, on_transitions, learner.extra_state.get("transport_seq")).start()
    log.info("learner listening on %s", cfg.transport.endpoint)
    if ready is not None:
        ready.set()
    published = None
    last_save = time.monotonic()
    try:
        while not stop.is_set():
            if learner.updates_due() > 0:
                learner.update()
            else:
                time.sleep(0.01)
            w = learner.weights()
            if w is not None and w[0] != published:
                server.publish_weights(*w)
                published = w[0]
            if time.monotonic() - last_save >= cfg.checkpoint_every_s:
                learner.save(cfg.output_dir)
                last_save = time.monotonic()
    except KeyboardInterrupt:
        log.info("interrupted: checkpointing the learner")
    finally:
        server.stop()
        learner.save(cfg.output_dir)
    return learner
