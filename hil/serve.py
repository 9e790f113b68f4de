"""The learner as a service: episodes from any number of actors over the link, updates, weights
out, checkpoints. `python -m tools.learner` runs it.

    learner machine:  CHUNKBOT_LINK_TOKEN=... python -m tools.learner --output_dir=outputs/hil/learner \
                          --transport.host=0.0.0.0 --transport.tls_cert=certs/link.crt \
                          --transport.tls_key=certs/link.key --config-path=policy.json
    each robot:       CHUNKBOT_LINK_TOKEN=... python -m tools.actor --robot.type=so101_follower ... \
                          --transport.host=<learner ip> --transport.tls_cert=link.crt --output_dir=outputs/hil/arm1

Nothing acknowledged is lost: the link writes every accepted batch to `journal/` before it is
acknowledged, a checkpoint records how far the journal had been applied (with each actor's
position, under one lock with the buffers), and a restarted learner replays the rest. SIGTERM
checkpoints as Ctrl-C does. Every `status_every_s` a line says which actors are connected, what
each has sent, how many updates ran and which weights version is out.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.config import session_policy
from hil.learner import HILLearner, HILLearnerConfig
from link import DeliveryState, LinkServer, TransportConfig
from link.store import BodyStore
from policy.checkpoint import last_checkpoint
from policy.config import QChunkSACConfig
from robot.recording import terminate_as_interrupt

log = logging.getLogger(__name__)

JOURNAL = "journal"


@dataclass
class LearnerServiceConfig:
    policy: QChunkSACConfig = field(default_factory=session_policy)
    learner: HILLearnerConfig = field(default_factory=HILLearnerConfig)
    transport: TransportConfig = field(default_factory=TransportConfig)
    output_dir: Path = Path("outputs/hil/learner")  # checkpoints/, journal/ and metrics.jsonl go here
    checkpoint_every_s: float = 300.0   # and on Ctrl-C / SIGTERM; batches since the last one wait in journal/
    status_every_s: float = 10.0        # a status line (actors, transitions, updates, weights) this often
    resume: bool = False                # continue from checkpoints/last and the journal after it


def open_service_learner(cfg: LearnerServiceConfig) -> tuple[HILLearner, dict[str, Any]]:
    out = Path(cfg.output_dir)
    started = last_checkpoint(out) is not None or (out / JOURNAL).exists()
    if started and not cfg.resume:
        raise FileExistsError(f"{out} already holds a learner; pass --resume=true to continue it, or choose "
                              "another --output_dir")
    if last_checkpoint(out) is not None:
        return HILLearner.resume(out, cfg.learner)
    return HILLearner(cfg.policy, cfg.learner), {}


class LearnerService:
    def __init__(self, cfg: LearnerServiceConfig) -> None:
        self.cfg = cfg
        self.out = Path(cfg.output_dir)
        self.learner, extra = open_service_learner(cfg)
        self.out.mkdir(parents=True, exist_ok=True)
        self.learner.metrics_path = self.out / "metrics.jsonl"
        journal = BodyStore(self.out / JOURNAL)
        if "link" in extra:
            state = DeliveryState.from_dict(extra["link"])
        else:   # the session id outlives a crash before the first checkpoint: it is kept with the journal
            state = DeliveryState(journal.state.get("session") or uuid.uuid4().hex)
        journal.save_state(session=state.session)
        self.server = LinkServer(cfg.transport, self._consume, state, journal.dir)
        self.server.replay_journal()
        self.published: int | None = None

    def _consume(self, actor: str, meta: dict, arrays: dict) -> int:
        return self.learner.add_episode(meta, arrays)

    def checkpoint(self) -> Path | None:
        with self.server.paused():   # no batch lands meanwhile: buffers, positions and journal agree
            applied = self.server.state.journal_applied
            path = self.learner.save(self.out, {"link": self.server.state.to_dict()})
        if path is not None and self.server.journal is not None:
            self.server.journal.remove_through(applied)
        return path

    def _publish(self) -> None:
        floor = self.server.version_floor
        if self.learner.weights() is not None and floor > self.learner.version:
            self.learner.publish(above=floor)   # an actor had a later version (this learner restarted)
        w = self.learner.weights()
        if w is not None and w[0] != self.published:
            self.server.publish_weights(*w)
            self.published = w[0]

    def status(self) -> str:
        updates = self.learner.learner.step if self.learner.learner is not None else 0
        line = f"{self.server.status_line()}; updates {updates}; env steps {self.learner.env_steps}"
        return line + (f"; DIVERGED: {self.learner.diverged}" if self.learner.diverged else "")

    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        terminate_as_interrupt()   # SIGTERM checkpoints like Ctrl-C (only in the main thread)
        self.server.start()
        log.info("learner listening on %s (%s, %s); session %s", self.server.config.target,
                 "TLS" if self.cfg.transport.tls_cert else "no TLS",
                 "token" if self.cfg.transport.token() else "no token", self.server.state.session[:8])
        if ready is not None:
            ready.set()
        last_save = last_status = time.monotonic()
        try:
            while not stop.is_set():
                if self.learner.updates_due() > 0:
                    self.learner.update()
                else:
                    time.sleep(0.01)
                self._publish()
                now = time.monotonic()
                if now - last_status >= self.cfg.status_every_s:
                    log.info("%s", self.status())
                    last_status = now
                if now - last_save >= self.cfg.checkpoint_every_s:
                    self.checkpoint()
                    last_save = now
        except KeyboardInterrupt:
            log.info("interrupted: checkpointing the learner")
        finally:
            self.server.stop()
            self.checkpoint()
            log.info("learner stopped: %s", self.status())


def serve_learner(cfg: LearnerServiceConfig, stop: threading.Event | None = None,
                  ready: threading.Event | None = None) -> HILLearner:
    """Receive episodes, train, publish weights until `stop` (or Ctrl-C / SIGTERM); checkpoint on the way out."""
    service = LearnerService(cfg)
    service.run(stop or threading.Event(), ready)
    return service.learner
