"""The actor's end of the link: a durable outbox drained in order, and the newest weights.

`submit(meta, arrays)` stores the batch in the outbox on disk (atomically, flushed) and returns;
a network thread sends the oldest stored batch, waits for its acknowledgement and deletes it, then
the next: one batch in flight, in order, so the learner applies each exactly once (see
`link.server`). Batches are stored without any credential: the token rides on each call, so a
batch stored while the actor had a wrong token goes out under the right one after a restart.

A second thread long-polls the learner for weights. Weights are accepted only from one learning
session and only with a version above every version this actor has accepted (kept on disk), so
neither a learner restarted from an older state nor a replayed answer can roll the policy back.

Within `warn_after_s` of the learner not answering (or refusing the token) a warning says so and
what to do; `problem` holds the same text for the caller's summary.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from link import wire
from link.config import TransportConfig, channel_options
from link.server import GET_WEIGHTS, SEND_BATCH
from link.store import BodyStore

log = logging.getLogger(__name__)

REPEAT_WARNING_S = 30.0
NEVER_ACCEPTED = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)


class OutboxFull(RuntimeError):
    """Too many batches wait for the learner (the message says what to check)."""


class ActorLink:
    def __init__(self, config: TransportConfig, outbox_dir: str | Path, weights_wait_s: float = 5.0) -> None:
        config.validate()
        self.config = config
        self.outbox = BodyStore(outbox_dir)
        if "actor_id" not in self.outbox.state:
            self.outbox.save_state(actor_id=uuid.uuid4().hex)
        self.actor_id: str = self.outbox.state["actor_id"]
        self.weights_wait_s = weights_wait_s
        self.acked = self.outbox.next_number - len(self.outbox) - 1   # numbers below the oldest kept were acked
        self.rejected: list[tuple[int, str]] = []
        self.problem: str | None = None
        self.weights_latency_s: float | None = None    # publish -> receipt of the last version (wall clocks)
        # (version, latency_s) of each version taken after the first since this start
        self.weights_received: list[tuple[int, float | None]] = []
        self._floor = int(self.outbox.state.get("weights_version", 0))
        self._session: str | None = self.outbox.state.get("weights_session")
        self._weights: tuple[int, bytes] | None = None
        self._caught_up = False
        self._taken: int | None = None
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._last_ok = time.monotonic()
        self._warned_at: float | None = None
        self._threads: list[threading.Thread] = []
        self._channel: grpc.Channel | None = None

    # ------------------------------------------------------------------ the control side
    def submit(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> int:
        """Store one batch durably for sending; returns its sequence number."""
        with self._lock:
            if len(self.outbox) >= self.config.max_pending_batches:
                raise OutboxFull(f"{len(self.outbox)} batches wait for the learner at {self.config.target}: is it "
                                 "running, and is the token right? (they are kept in " f"{self.outbox.dir})")
            seq = self.outbox.next_number
            body = wire.encode({"actor_id": self.actor_id, "seq": seq, "meta": meta}, arrays)
            if len(body) > self.config.max_message_bytes:
                raise ValueError(f"a batch of {len(body)} bytes is over --transport.max_message_mb="
                                 f"{self.config.max_message_mb}: send shorter episodes, or raise it on both ends")
            self.outbox.put(seq, body)
            self._work.notify_all()
        return seq

    @property
    def pending(self) -> int:
        return len(self.outbox)

    @property
    def next_seq(self) -> int:
        return self.outbox.next_number

    def latest_weights(self) -> tuple[int, bytes] | None:
        """(version, safetensors bytes) once per version newer than the last one handed out."""
        with self._lock:
            w = self._weights
            if w is None or w[0] == self._taken:
                return None
            self._taken = w[0]
            return w

    def wait_acked(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.pending == 0

    def wait_weights(self, timeout_s: float) -> tuple[int, bytes] | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            w = self.latest_weights()
            if w is not None:
                return w
            time.sleep(0.01)
        return None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "ActorLink":
        self._stop.clear()
        tls = self.config.read_tls(server=False)
        # reconnect within a fraction of a second when the learner comes back (gRPC's default backoff
        # grows to two minutes), while the outbox holds what it could not send
        options = channel_options(self.config) + [("grpc.initial_reconnect_backoff_ms", 200),
                                                  ("grpc.min_reconnect_backoff_ms", 200),
                                                  ("grpc.max_reconnect_backoff_ms", 2000)]
        if tls is None:
            self._channel = grpc.insecure_channel(self.config.target, options=options)
        else:
            self._channel = grpc.secure_channel(self.config.target, grpc.ssl_channel_credentials(tls[0]), options)
        self._send = self._channel.unary_unary(SEND_BATCH)
        self._ask = self._channel.unary_unary(GET_WEIGHTS)
        self._metadata = (("authorization", f"Bearer {self.config.token()}"),)
        self._threads = [threading.Thread(target=self._send_loop, name="link-send", daemon=True),
                         threading.Thread(target=self._weights_loop, name="link-weights", daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._work:
            self._work.notify_all()
        if self._channel is not None:
            self._channel.close()      # ends a long poll in flight
        for t in self._threads:
            t.join(10.0)
        self._threads, self._channel = [], None

    def __enter__(self) -> "ActorLink":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ health
    def _answered(self) -> None:
        self._last_ok = time.monotonic()
        if self.problem is not None:
            log.info("the learner at %s answers again", self.config.target)
        self.problem, self._warned_at = None, None

    def _failed(self, e: grpc.RpcError) -> None:
        code = e.code() if hasattr(e, "code") else None
        now = time.monotonic()
        if code == grpc.StatusCode.UNAUTHENTICATED:
            self.problem = (f"the learner at {self.config.target} refused this actor's token: put the learner's "
                            f"token in $CHUNKBOT_LINK_TOKEN or --transport.token_file and restart with --resume=true "
                            f"({self.pending} batch(es) are kept in {self.outbox.dir} and go out then)")
        elif now - self._last_ok >= self.config.warn_after_s:
            detail = e.details() if hasattr(e, "details") else str(e)
            self.problem = (f"the learner at {self.config.target} has not answered for {now - self._last_ok:.0f} s "
                            f"({code.name if code else 'error'}: {detail}): is `python -m tools.learner` running there, "
                            f"and are --transport.host/port/tls_cert right? {self.pending} batch(es) wait in "
                            f"{self.outbox.dir} and go out when it answers")
        else:
            return
        if self._warned_at is None or now - self._warned_at >= REPEAT_WARNING_S:
            log.warning("%s", self.problem)
            self._warned_at = now

    def _pause(self, seconds: float) -> None:
        self._stop.wait(seconds)

    # ------------------------------------------------------------------ sending
    def _send_loop(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            with self._work:
                if not len(self.outbox):
                    self._work.wait(0.5)
                    continue
            oldest = self.outbox.oldest()
            if oldest is None:
                continue
            seq, body = oldest
            try:
                raw = self._send(body, timeout=self.config.deadline_s,
                                 metadata=self._metadata + (("x-oldest-kept", str(seq)),))
                reply = wire.decode_json(raw)
            except grpc.RpcError as e:
                if e.code() in NEVER_ACCEPTED:
                    self._drop(seq, f"{e.code().name}: {e.details()}")
                    continue
                self._failed(e)
                self._pause(backoff)
                backoff = min(2.0, backoff * 2)
                continue
            except wire.BodyRefused as e:
                log.warning("a garbled answer from the learner (%s); sending batch %d again", e, seq)
                self._pause(backoff)
                continue
            self._answered()
            backoff = 0.1
            acked = reply.get("acked")
            if isinstance(reply.get("rejected"), int):
                self._drop(reply["rejected"], str(reply.get("reason", "")))
            if type(acked) is int and acked >= 0:
                self.outbox.remove_through(acked)
                self.acked = max(self.acked, acked)
            if type(acked) is int and acked < seq and not isinstance(reply.get("rejected"), int):
                self._pause(0.2)       # the learner waits for a batch before this one (a gap): resend

    def _drop(self, seq: int, reason: str) -> None:
        """The learner can never accept this batch: say why and let the stream move on."""
        log.error("the learner rejected episode batch %d for good (%s); it is dropped from the outbox (the "
                  "session's dataset keeps the episode)", seq, reason)
        self.rejected.append((seq, reason))
        self.outbox.remove(seq)
        self.acked = max(self.acked, seq)

    # ------------------------------------------------------------------ weights
    def _weights_loop(self) -> None:
        while not self._stop.is_set():
            ask = {"actor_id": self.actor_id, "session": self._session, "floor": self._floor,
                   "wait_s": self.weights_wait_s}
            try:
                raw = self._ask(wire.encode_json(ask), metadata=self._metadata,
                                timeout=self.weights_wait_s + self.config.deadline_s)
            except grpc.RpcError as e:
                if self._stop.is_set():
                    return
                self._failed(e)
                self._pause(0.5)
                continue
            self._answered()
            try:
                self._take(raw)
            except (wire.BodyRefused, KeyError, TypeError, ValueError) as e:
                log.warning("refused weights from the learner: %s", e)
                self._pause(0.5)

    def _take(self, raw: bytes) -> None:
        if raw[:1] == b"{":
            wire.decode_json(raw)     # "current": nothing newer yet
            return
        header, arrays = wire.decode(raw, self.config.max_message_bytes)
        session, version, blob = header["session"], header["version"], arrays["safetensors"]
        if not isinstance(session, str) or type(version) is not int or blob.dtype != np.uint8 or blob.ndim != 1:
            raise ValueError("a weights answer needs a session string, an integer version and one uint8 array")
        if self._session is not None and session != self._session:
            raise ValueError(f"they belong to another learning session ({session[:8]}, this actor follows "
                             f"{self._session[:8]}): start this actor with a new --output_dir for a new learner")
        if version <= self._floor:
            raise ValueError(f"version {version} is not newer than v{self._floor}, which this actor already had")
        published = header.get("published_at")
        if isinstance(published, (int, float)):
            self.weights_latency_s = max(0.0, time.time() - float(published))
        if self._caught_up:   # the first weights after a start are a catch-up, not a broadcast
            self.weights_received.append((version, self.weights_latency_s))
        self._caught_up = True
        with self._lock:
            self._weights, self._session, self._floor = (version, blob.tobytes()), session, version
        self.outbox.save_state(weights_session=session, weights_version=version)
