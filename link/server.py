"""The learner's end of the link: a gRPC server that takes batches in order and hands out weights.

Two calls, both unary with raw-bytes bodies (`link.wire`), so no protoc step and no pickle:

* `SendBatch`: one batch from an actor, `{"actor_id", "seq", "meta"}` plus arrays. The server
  applies batch `seq` only when it is the next one it expects from that actor, writes it to the
  journal (durable) before handing it to the consumer, and answers with the highest number it has
  applied (a cumulative ack): a duplicate is acknowledged and not applied again; a batch after a
  gap waits for the missing one, unless the actor says (`x-oldest-kept`) it no longer holds it
  (this learner restarted from an older state: the loss is logged). A batch the consumer can never
  accept (`BatchRejected`) is answered as rejected and counted as consumed, so the actor's stream
  moves on.
* `GetWeights`: a long poll. The actor says which weights session and version it has; the answer
  comes as soon as a newer version is published (or after `wait_s` with "current"). Weights carry
  the session id and a version that only grows within it: an actor that reports a version above
  the learner's (the learner restarted from an older checkpoint) raises `version_floor`, and the
  learner's next version is published above it.

Authentication happens in an interceptor, on the call's metadata, before the body is read: a call
without the token is answered UNAUTHENTICATED by a handler that never reads the request, so an
unauthenticated peer cannot make the learner buffer its large bodies (gRPC's message limit caps
everyone else). The token is compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import Counter
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import grpc
import numpy as np

from link import wire
from link.config import LinkConfigError, TransportConfig, channel_options, check_server_security
from link.store import BodyStore

log = logging.getLogger(__name__)

SERVICE = "chunkbot.link.v1.Link"
SEND_BATCH = f"/{SERVICE}/SendBatch"
GET_WEIGHTS = f"/{SERVICE}/GetWeights"
MAX_WAIT_S = 10.0


class BatchRejected(ValueError):
    """The consumer can never accept this batch (bad shape, non-finite values, another robot)."""


Consumer = Callable[[str, dict[str, Any], dict[str, np.ndarray]], int]   # (actor, meta, arrays) -> transitions


@dataclass
class ActorStats:
    peer: str
    first_seen: float
    last_seen: float
    batches: int = 0
    transitions: int = 0
    rejected: int = 0
    lost_batches: int = 0
    weights_version: int | None = None    # the last version this actor was sent


@dataclass
class DeliveryState:
    """What a checkpoint must hold to resume the link exactly where its buffers stand."""

    session: str
    next_seq: dict[str, int] = field(default_factory=dict)
    journal_applied: int = -1

    def to_dict(self) -> dict[str, Any]:
        return {"session": self.session, "next_seq": dict(self.next_seq), "journal_applied": self.journal_applied}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DeliveryState":
        return cls(str(d["session"]), {str(k): int(v) for k, v in d.get("next_seq", {}).items()},
                   int(d.get("journal_applied", -1)))


class _TokenCheck(grpc.ServerInterceptor):
    def __init__(self, token: str, refused: Counter) -> None:
        self._expected = f"Bearer {token}".encode()
        self._refused = refused

        def deny(request_iterator: Any, context: grpc.ServicerContext) -> bytes:  # never reads the body
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "wrong or missing token")

        self._deny = grpc.stream_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        given = next((v for k, v in details.invocation_metadata or () if k == "authorization"), "")
        given = given.encode() if isinstance(given, str) else bytes(given)
        if hmac.compare_digest(given, self._expected):
            return continuation(details)
        self._refused["bad_token"] += 1
        return self._deny


class LinkServer:
    """Serves `SendBatch` and `GetWeights` (see the module docstring) from a gRPC thread pool."""

    def __init__(self, config: TransportConfig, consumer: Consumer, state: DeliveryState,
                 journal_dir: str | Path | None = None, max_workers: int = 64) -> None:
        config.validate()
        check_server_security(config)
        self.config = config
        self.consumer = consumer
        self.state = state
        self.journal = BodyStore(journal_dir) if journal_dir is not None else None
        self.refused: Counter[str] = Counter()
        self.actors: dict[str, ActorStats] = {}
        self.version_floor = 0
        self.port: int | None = None
        self._max_workers = max_workers
        self._actors_lock = threading.Lock()
        self._consume = threading.Lock()      # batches are applied one at a time, in journal order
        self._weights_changed = threading.Condition()
        self._weights: tuple[int, bytes, float] | None = None     # version, safetensors, published at
        self._server: grpc.Server | None = None

    # ------------------------------------------------------------------ lifecycle
    def replay_journal(self) -> int:
        """Apply journaled batches the checkpoint does not hold yet (after a crash); returns how many."""
        if self.journal is None:
            return 0
        n = 0
        for number, body in self.journal.items(after=self.state.journal_applied):
            header, arrays = wire.decode(body, 1 << 62)
            actor, seq = header["actor_id"], int(header["seq"])
            if "rejected" not in header:
                self._apply(actor, header.get("meta") or {}, arrays, replay=True)
                n += 1
            self.state.next_seq[actor] = seq + 1
            self.state.journal_applied = number
        if n:
            log.info("replayed %d journaled batch(es) received after the last checkpoint", n)
        return n

    def start(self) -> "LinkServer":
        token = self.config.token()
        handlers = grpc.method_handlers_generic_handler(SERVICE, {
            "SendBatch": grpc.unary_unary_rpc_method_handler(self._send_batch),
            "GetWeights": grpc.unary_unary_rpc_method_handler(self._get_weights)})
        ms = int(self.config.keepalive_s * 1000)
        options = channel_options(self.config) + [("grpc.http2.min_recv_ping_interval_without_data_ms", ms // 2),
                                                  ("grpc.so_reuseport", 0)]
        server = grpc.server(futures.ThreadPoolExecutor(self._max_workers, thread_name_prefix="link-server"),
                             handlers=[handlers], interceptors=[_TokenCheck(token, self.refused)] if token else [],
                             options=options, maximum_concurrent_rpcs=4 * self._max_workers)
        tls = self.config.read_tls(server=True)
        address = self.config.target
        try:
            if tls is None:
                port = server.add_insecure_port(address)
            else:
                port = server.add_secure_port(address, grpc.ssl_server_credentials([(tls[1], tls[0])]))
        except RuntimeError as e:
            port, err = 0, e
        else:
            err = None
        if not port:
            raise LinkConfigError(f"cannot listen on {address} ({err or 'the port is taken or the address is not '
                                  'this machine'}): choose another --transport.port")
        self.port = port
        server.start()
        self._server = server
        return self

    def stop(self, grace_s: float = 1.0) -> None:
        if self._server is not None:
            with self._weights_changed:
                self._weights_changed.notify_all()
            self._server.stop(grace_s).wait(grace_s + 5)
            self._server = None

    def __enter__(self) -> "LinkServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def paused(self) -> threading.Lock:
        """Hold this while checkpointing: no batch is applied meanwhile, so buffers and `state` agree."""
        return self._consume

    # ------------------------------------------------------------------ weights
    def publish_weights(self, version: int, safetensors_bytes: bytes) -> None:
        with self._weights_changed:
            self._weights = (int(version), bytes(safetensors_bytes), time.time())
            self._weights_changed.notify_all()

    @property
    def weights_version(self) -> int | None:
        w = self._weights
        return None if w is None else w[0]

    # ------------------------------------------------------------------ calls
    def _seen(self, actor: str, context: grpc.ServicerContext) -> ActorStats:
        now = time.monotonic()
        with self._actors_lock:
            stats = self.actors.get(actor)
            if stats is None:
                stats = self.actors[actor] = ActorStats(context.peer(), now, now)
                log.info("actor %s connected from %s", actor, stats.peer)
            elif stats.peer == "(journal)":
                stats.peer = context.peer()
                log.info("actor %s connected from %s", actor, stats.peer)
            stats.last_seen = now
        return stats

    @staticmethod
    def _actor_id(value: Any, context: grpc.ServicerContext) -> str:
        if not (isinstance(value, str) and 0 < len(value) <= 128 and value.isprintable()):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed: missing or bad actor_id")
        return value

    def _send_batch(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            header, arrays = wire.decode(request, self.config.max_message_bytes)
        except wire.BodyRefused as e:
            self.refused[e.reason] += 1
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        actor = self._actor_id(header.get("actor_id"), context)
        seq, meta = header.get("seq"), header.get("meta", {})
        if type(seq) is not int or seq < 0 or not isinstance(meta, dict) or "rejected" in header:
            self.refused["malformed"] += 1
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed: a batch needs an integer seq >= 0 and a meta object")
        kept = dict(context.invocation_metadata()).get("x-oldest-kept", "")
        oldest_kept = int(kept) if kept.isdigit() else 0
        with self._consume:
            stats = self._seen(actor, context)
            expected = self.state.next_seq.get(actor, 0)
            if seq > expected and oldest_kept > expected:
                lost = min(seq, oldest_kept) - expected
                log.error("actor %s no longer holds batches %d..%d (this learner restarted from an older state): "
                          "they are lost to the buffer (the actor's dataset has them)", actor, expected, expected + lost - 1)
                stats.lost_batches += lost
                self.state.next_seq[actor] = expected = expected + lost
            reply: dict[str, Any] = {}
            if seq == expected:
                reply = self._consume_one(actor, seq, meta, arrays, request, stats, context)
            elif seq > expected:
                self.refused["gap"] += 1      # an earlier batch is missing: wait for it
            return wire.encode_json({"acked": self.state.next_seq.get(actor, 0) - 1, **reply})

    def _consume_one(self, actor: str, seq: int, meta: dict, arrays: dict, body: bytes, stats: ActorStats,
                     context: grpc.ServicerContext) -> dict[str, Any]:
        number = self.journal.next_number if self.journal is not None else self.state.journal_applied + 1
        if self.journal is not None:
            self.journal.put(number, body)      # durable before it is acknowledged
        try:
            transitions = self._apply(actor, meta, arrays)
        except BatchRejected as e:
            if self.journal is not None:        # keep the decision, not the data: a replay skips it
                self.journal.put(number, wire.encode({"actor_id": actor, "seq": seq, "rejected": str(e)[:500]}))
            log.error("rejected batch %d of actor %s: %s", seq, actor, e)
            stats.rejected += 1
            self.state.next_seq[actor], self.state.journal_applied = seq + 1, number
            return {"rejected": seq, "reason": str(e)[:500]}
        except Exception:   # a bug on this side: not acknowledged, the actor sends it again
            if self.journal is not None:
                self.journal.remove(number)
            log.exception("applying batch %d of actor %s failed; it was not acknowledged", seq, actor)
            self.refused["error"] += 1
            context.abort(grpc.StatusCode.INTERNAL, "the learner failed to apply the batch; it will be resent")
        self.state.next_seq[actor], self.state.journal_applied = seq + 1, number
        stats.batches += 1
        stats.transitions += transitions
        if stats.batches == 1:
            log.info("actor %s sent its first batch (%d transitions)", actor, transitions)
        return {}

    def _apply(self, actor: str, meta: dict, arrays: dict, replay: bool = False) -> int:
        transitions = self.consumer(actor, meta, arrays)
        if replay:
            stats = self.actors.setdefault(actor, ActorStats("(journal)", time.monotonic(), time.monotonic()))
            stats.batches += 1
            stats.transitions += transitions
        return transitions

    def _get_weights(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            ask = wire.decode_json(request)
        except wire.BodyRefused as e:
            self.refused[e.reason] += 1
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        actor = self._actor_id(ask.get("actor_id"), context)
        floor, wait_s = ask.get("floor", 0), ask.get("wait_s", 0.0)
        if type(floor) is not int or not isinstance(wait_s, (int, float)):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed: floor must be an integer, wait_s a number")
        stats = self._seen(actor, context)
        same_session = ask.get("session") in (None, self.state.session)
        if same_session and floor > self.version_floor:
            self.version_floor = floor      # the learner publishes above it next
        deadline = time.monotonic() + max(0.0, min(float(wait_s), MAX_WAIT_S))

        def newer() -> bool:
            w = self._weights
            return w is not None and (not same_session or w[0] > floor)

        with self._weights_changed:
            while not newer() and self._server is not None and context.is_active():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._weights_changed.wait(min(left, 0.5))
            w = self._weights if newer() else None
        if w is None:
            return wire.encode_json({"current": self.weights_version, "session": self.state.session})
        stats.weights_version = w[0]
        return wire.encode({"session": self.state.session, "version": w[0], "published_at": w[2]},
                           {"safetensors": np.frombuffer(w[1], np.uint8)})

    # ------------------------------------------------------------------ reporting
    def connected(self, within_s: float = 15.0) -> list[str]:
        now = time.monotonic()
        return [a for a, s in self.actors.items() if now - s.last_seen <= within_s and s.peer != "(journal)"]

    def status_line(self) -> str:
        per_actor = ", ".join(f"{a[:8]} {s.transitions}" for a, s in sorted(self.actors.items()))
        refused = sum(self.refused.values())
        return (f"actors connected {len(self.connected())}/{len(self.actors)}; transitions per actor: "
                f"{per_actor or '-'}; weights v{self.weights_version or 0}"
                + (f"; refused calls {dict(self.refused)}" if refused else ""))
