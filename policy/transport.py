"""Actor <-> learner transport over ZeroMQ: framed messages, never pickle.

A message is a ZeroMQ multipart message of frames

    [type, header, array_0, ..., array_{n-1}, mac]

* `type`    ASCII name from `MESSAGE_TYPES`; anything else is refused.
* `header`  UTF-8 JSON object (at most `MAX_HEADER_BYTES`). Its `"arrays"` entry lists, for each
            array frame, `[name, dtype, shape]`; dtypes come from a whitelist of plain numeric
            types (no object arrays, so decoding never runs code), and each frame's byte size
            must equal prod(shape) * itemsize exactly.
* `array_i` the raw C-order bytes of one numpy array (weights travel as one uint8 array holding a
            safetensors file).
* `mac`     HMAC-SHA256 over the length-prefixed preceding frames, keyed with the shared token.
            An empty token still detects corruption but authenticates nothing, so it is allowed
            only on a loopback address: a server bound anywhere else refuses to start without a
            token, and a client with the wrong token gets every message refused.

On the wire each message travels as ONE ZeroMQ frame (`pack`: a frame count, the frames' lengths,
then their bytes), never as a ZeroMQ multipart message: libzmq 4.3.5 can abort a process whose link
drops while a multipart message is half sent (session_base.cpp:233, libzmq#3442), and the actor is
the process that drives the robot. A multipart message from a foreign peer is refused as malformed.

Message sizes are capped twice: ZeroMQ's `MAXMSGSIZE` disconnects a peer whose message is larger
than the limit before it is buffered, and the decoder refuses a message whose frames add up to more.
The actor checks its own packed batches against the same limit before queueing them (a clear error
instead of a silently dropped link).

Delivery (`ActorClient` <-> `LearnerServer`, a DEALER and a ROUTER socket):

* the actor numbers its transition batches 0, 1, 2, ... per actor id and keeps each batch until
  the learner acknowledges it; unacknowledged batches are sent again after `resend_after_s`
  (after a dropped link, a learner restart or a lost message), oldest first;
* the learner applies batch `seq` only when it is the next one it expects from that actor, and
  acknowledges the highest applied number (cumulative ack): duplicates are acknowledged and
  dropped, gaps are refused until the missing batch arrives, so every transition is applied
  exactly once and in order;
* a learner restarted from an older checkpoint expects batches the actor has already dropped
  (they were acknowledged): the actor then says `resync` (the oldest batch it still holds) and the
  learner continues from there, logging how many batches it lost with its crash;
* weights: the actor asks with the version it has; the learner answers with the latest version
  (or "current"). After a dropped link the actor simply asks again, so weights resume.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import queue
import socket as pysocket
import struct
import threading
import time
import uuid
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import zmq

log = logging.getLogger(__name__)

# actor -> learner
MSG_TRANSITIONS = b"transitions"
MSG_GET_WEIGHTS = b"get_weights"
MSG_RESYNC = b"resync"          # "I no longer hold batches before `next_kept`" (the learner lost some)
# learner -> actor
MSG_ACK = b"ack"
MSG_WEIGHTS = b"weights"
MSG_WEIGHTS_CURRENT = b"weights_current"
MESSAGE_TYPES = frozenset({MSG_TRANSITIONS, MSG_GET_WEIGHTS, MSG_RESYNC, MSG_ACK, MSG_WEIGHTS,
                           MSG_WEIGHTS_CURRENT})
TO_LEARNER = frozenset({MSG_TRANSITIONS, MSG_GET_WEIGHTS, MSG_RESYNC})
TO_ACTOR = frozenset({MSG_ACK, MSG_WEIGHTS, MSG_WEIGHTS_CURRENT})

ALLOWED_DTYPES = frozenset({"bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32",
                            "float16", "float32", "float64"})
MAX_HEADER_BYTES = 64 * 1024
MAX_ARRAYS = 256
MAC_BYTES = 32
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class TransportError(RuntimeError):
    """A configuration error of the transport (the message says what to change)."""


class MessageRefused(ValueError):
    """An incoming message was refused; `reason` is a short counter key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass
class TransportConfig:
    host: str = "127.0.0.1"              # the learner binds here and the actor connects here
    port: int = 5555
    # Shared secret (HMAC-SHA256 key). Required when the learner binds to a non-loopback address.
    token: str = ""
    max_message_bytes: int = 256 * 1024 * 1024   # weights of a large image policy fit; raise if not
    resend_after_s: float = 2.0          # actor: resend a batch not acknowledged within this long
    max_pending_batches: int = 100_000   # actor: unacknowledged batches kept (then it refuses more)

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_security(config: TransportConfig) -> None:
    if not is_loopback(config.host) and not config.token:
        raise TransportError(
            f"the learner would listen on {config.host}, which other machines can reach, without a token: "
            "set --transport.token=<shared secret> (the same on the actor), or bind to 127.0.0.1 and "
            "tunnel (ssh -L) instead")


# ---------------------------------------------------------------------- framing
def _mac(key: bytes, frames: list[bytes]) -> bytes:
    h = hmac.new(key, digestmod=hashlib.sha256)
    for f in frames:
        h.update(struct.pack("<Q", len(f)))
        h.update(f)
    return h.digest()


def encode(msg_type: bytes, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None,
           token: str = "") -> list[bytes]:
    """Frames of one message (see the module docstring)."""
    if msg_type not in MESSAGE_TYPES:
        raise ValueError(f"unknown message type {msg_type!r}")
    specs, payload = [], []
    for name, a in (arrays or {}).items():
        a = np.ascontiguousarray(a)
        if a.dtype.name not in ALLOWED_DTYPES:
            raise ValueError(f"array {name!r} has dtype {a.dtype}; allowed: {sorted(ALLOWED_DTYPES)}")
        specs.append([name, a.dtype.name, list(a.shape)])
        payload.append(a.tobytes())
    head = json.dumps({**header, "arrays": specs}, separators=(",", ":")).encode()
    frames = [msg_type, head, *payload]
    return frames + [_mac(token.encode(), frames)]


def pack(frames: list[bytes]) -> bytes:
    """One wire frame holding `frames`: u32 count, u64 length of each, then the bytes."""
    return b"".join([struct.pack(f"<I{len(frames)}Q", len(frames), *map(len, frames)), *frames])


def unpack(wire: bytes | memoryview) -> list[bytes | memoryview]:
    """The frames of one wire frame (`pack`'s inverse). The small frames come back as bytes, the
    array frames as views into `wire` (no copy). Raises `MessageRefused` when it does not parse."""
    view = memoryview(wire)
    if len(view) < 4:
        raise MessageRefused("malformed", f"a wire frame of {len(view)} bytes")
    (n,) = struct.unpack_from("<I", view)
    if not 3 <= n <= MAX_ARRAYS + 3 or len(view) < 4 + 8 * n:
        raise MessageRefused("malformed", f"a wire frame claiming {n} frames")
    lengths = struct.unpack_from(f"<{n}Q", view, 4)
    start = 4 + 8 * n
    if start + sum(lengths) != len(view):
        raise MessageRefused("malformed", f"frame lengths add up to {sum(lengths)}, not {len(view) - start}")
    frames: list[bytes | memoryview] = []
    for i, length in enumerate(lengths):
        f = view[start:start + length]
        frames.append(f if 2 <= i < n - 1 else f.tobytes())
        start += length
    return frames


def decode(frames: list[bytes], token: str = "", max_bytes: int = 1 << 30,
           allowed: frozenset[bytes] = MESSAGE_TYPES) -> tuple[bytes, dict[str, Any], dict[str, np.ndarray]]:
    """(type, header, arrays) of a message; raises `MessageRefused` for anything not well formed,
    too large, of a type not in `allowed`, or not signed with `token`."""
    total = sum(len(f) for f in frames)
    if total > max_bytes:
        raise MessageRefused("too_large", f"{total} bytes > limit {max_bytes}")
    if len(frames) < 3 or len(frames) > MAX_ARRAYS + 3:
        raise MessageRefused("malformed", f"{len(frames)} frames")
    *body, mac = frames
    if len(mac) != MAC_BYTES or not hmac.compare_digest(mac, _mac(token.encode(), body)):
        raise MessageRefused("bad_mac", "HMAC does not match (wrong token, or a corrupted message)")
    msg_type, head, payload = body[0], body[1], body[2:]
    if msg_type not in allowed:
        raise MessageRefused("bad_type", f"message type {msg_type[:32]!r} is not accepted here")
    if len(head) > MAX_HEADER_BYTES:
        raise MessageRefused("malformed", f"header of {len(head)} bytes")
    try:
        header = json.loads(head.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MessageRefused("malformed", f"header is not JSON ({e})") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        raise MessageRefused("malformed", "header must be a JSON object with an 'arrays' list")
    specs = header.pop("arrays")
    if len(specs) != len(payload):
        raise MessageRefused("malformed", f"{len(specs)} array specs for {len(payload)} array frames")
    arrays: dict[str, np.ndarray] = {}
    for spec, raw in zip(specs, payload):
        try:
            name, dtype, shape = spec
            shape = tuple(int(s) for s in shape)
            ok = isinstance(name, str) and dtype in ALLOWED_DTYPES and all(s >= 0 for s in shape)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise MessageRefused("malformed", f"bad array spec {str(spec)[:100]}")
        dt = np.dtype(dtype)
        if int(np.prod(shape, dtype=np.int64)) * dt.itemsize != len(raw):
            raise MessageRefused("malformed", f"array {name!r}: {len(raw)} bytes for shape {shape} {dtype}")
        arrays[name] = np.frombuffer(raw, dtype=dt).reshape(shape)
    return msg_type, header, arrays


def _socket(ctx: zmq.Context, kind: int, config: TransportConfig) -> zmq.Socket:
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.MAXMSGSIZE, int(config.max_message_bytes))  # per frame: a larger one drops the peer
    return s


# ---------------------------------------------------------------------- learner side
class LearnerServer:
    """Receives transition batches and weight requests on a ROUTER socket, in its own thread.

    `on_transitions(actor_id, header, arrays)` runs in the server thread for each batch, in order,
    exactly once per (actor_id, seq); it must not raise for data it accepts. `publish_weights`
    (any thread) sets what `get_weights` answers. `next_seq` is the per-actor delivery state; save
    it with a checkpoint and hand it back on resume (`initial_seq`).
    """

    def __init__(self, config: TransportConfig, on_transitions: Callable[[str, dict, dict], None],
                 initial_seq: dict[str, int] | None = None):
        check_server_security(config)
        self.config = config
        self.on_transitions = on_transitions
        self.next_seq: dict[str, int] = dict(initial_seq or {})
        self.refused: Counter[str] = Counter()
        self.received_batches = 0
        self.lost_batches = 0
        self._weights: tuple[int, bytes] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bound = threading.Event()
        self._bind_error: BaseException | None = None
        self.port: int | None = None

    def publish_weights(self, version: int, safetensors_bytes: bytes) -> None:
        with self._lock:
            self._weights = (int(version), bytes(safetensors_bytes))

    @property
    def weights_version(self) -> int | None:
        with self._lock:
            return None if self._weights is None else self._weights[0]

    def start(self) -> "LearnerServer":
        self._stop.clear()
        self._bound.clear()
        self._bind_error = None
        self._thread = threading.Thread(target=self._serve, name="learner-server", daemon=True)
        self._thread.start()
        self._bound.wait(10.0)
        if self._bind_error is not None:
            raise TransportError(f"cannot listen on {self.config.endpoint}: {self._bind_error}") from self._bind_error
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def __enter__(self) -> "LearnerServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        ctx = zmq.Context()  # private: its io thread ends with this server, not at interpreter exit
        sock = _socket(ctx, zmq.ROUTER, self.config)
        try:
            if self.config.port == 0:
                self.port = sock.bind_to_random_port(self.config.endpoint.rsplit(":", 1)[0])
            else:
                sock.bind(self.config.endpoint)
                self.port = self.config.port
        except zmq.ZMQError as e:
            self._bind_error = e
            self._bound.set()
            sock.close()
            ctx.term()
            return
        self._bound.set()
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(50):
                    continue
                parts = sock.recv_multipart(copy=True)
                if len(parts) != 2:  # [identity, one wire frame]; a multipart message is not ours
                    self.refused["malformed"] += 1
                    continue
                identity, wire = parts
                try:
                    replies = self.handle_wire(wire)
                except Exception:  # a bug in the consumer must not take the server down: no ack, it comes again
                    log.exception("handling a message failed; it was not acknowledged")
                    self.refused["error"] += 1
                    continue
                for reply in replies:
                    sock.send_multipart([identity, pack(reply)])
        finally:
            sock.close()
            ctx.term()

    def handle_wire(self, wire: bytes) -> list[list[bytes]]:
        """One wire frame -> the reply messages (none for a refused one)."""
        try:
            frames = unpack(wire)
        except MessageRefused as e:
            self.refused[e.reason] += 1
            log.warning("refused a message: %s", e)
            return []
        return self.handle(frames)

    def handle(self, frames: list[bytes]) -> list[list[bytes]]:
        """One incoming message -> the reply messages (none for a refused one)."""
        try:
            msg_type, header, arrays = decode(frames, self.config.token, self.config.max_message_bytes, TO_LEARNER)
            actor = header.get("actor_id")
            if not isinstance(actor, str) or not actor or len(actor) > 128:
                raise MessageRefused("malformed", "missing actor_id")
            if msg_type == MSG_GET_WEIGHTS:
                have = header.get("have_version")
                with self._lock:
                    weights = self._weights
                if weights is None or weights[0] == have:
                    return [encode(MSG_WEIGHTS_CURRENT, {"version": None if weights is None else weights[0]},
                                   token=self.config.token)]
                return [encode(MSG_WEIGHTS, {"version": weights[0]},
                               {"safetensors": np.frombuffer(weights[1], np.uint8)}, self.config.token)]
            seq = header.get("seq") if msg_type == MSG_TRANSITIONS else header.get("next_kept")
            if not isinstance(seq, int) or seq < 0:
                raise MessageRefused("malformed", "transitions need an integer seq >= 0")
            expected = self.next_seq.get(actor, 0)
            if msg_type == MSG_RESYNC:
                if seq > expected:
                    log.error("actor %s no longer holds batches %d..%d (this learner restarted from an older "
                              "checkpoint): they are lost to the buffer (the actor's dataset has them)",
                              actor, expected, seq - 1)
                    self.lost_batches += seq - expected
                    self.next_seq[actor] = seq
            elif seq == expected:
                try:
                    self.on_transitions(actor, header, arrays)
                except ValueError as e:  # the learner cannot use it (e.g. another robot): not acknowledged
                    raise MessageRefused("rejected", str(e)) from None
                self.next_seq[actor] = expected + 1
                self.received_batches += 1
            elif seq > expected:
                self.refused["gap"] += 1  # an earlier batch went missing: wait for its resend
            return [encode(MSG_ACK, {"actor_id": actor, "acked": self.next_seq.get(actor, 0) - 1},
                           token=self.config.token)]
        except MessageRefused as e:
            self.refused[e.reason] += 1
            log.warning("refused a message: %s", e)
            return []


# ---------------------------------------------------------------------- actor side
class ActorClient:
    """Sends transition batches (kept until acknowledged) and fetches weights, from its own thread.

    `send_transitions(arrays, header)` never blocks on the network; `latest_weights()` returns
    (version, safetensors bytes) once a version newer than the one handed out last has arrived.
    """

    def __init__(self, config: TransportConfig, actor_id: str | None = None, first_seq: int = 0,
                 weights_poll_s: float = 1.0):
        self.config = config
        self.actor_id = actor_id or uuid.uuid4().hex
        self.weights_poll_s = weights_poll_s
        # seq -> (the packed wire frame, sent at): packed once, resent as it is
        self._pending: OrderedDict[int, tuple[bytes, float]] = OrderedDict()
        self._next_seq = first_seq
        self._acked = first_seq - 1
        self._lock = threading.Lock()
        self._outbox: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._weights: tuple[int, bytes] | None = None
        self._weights_taken: int | None = None
        self._resync: int | None = None   # the learner wants batches we no longer hold: tell it
        self.refused: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- API for the control side (any thread) ---
    def send_transitions(self, arrays: dict[str, np.ndarray], header: dict[str, Any] | None = None) -> int:
        with self._lock:
            if len(self._pending) >= self.config.max_pending_batches:
                raise TransportError(f"{len(self._pending)} transition batches are waiting for the learner "
                                     f"at {self.config.endpoint}; is it running and is the token right?")
            seq = self._next_seq
            wire = pack(encode(MSG_TRANSITIONS, {**(header or {}), "actor_id": self.actor_id, "seq": seq}, arrays,
                               self.config.token))
            if len(wire) > self.config.max_message_bytes:  # what ZeroMQ's MAXMSGSIZE measures on the learner
                raise TransportError(f"a transition batch of {len(wire)} bytes is over max_message_bytes="
                                     f"{self.config.max_message_bytes}: send fewer steps per batch, or raise "
                                     "max_message_bytes on both the actor and the learner")
            self._next_seq += 1
            self._pending[seq] = (wire, -np.inf)
        self._outbox.put(seq)
        return seq

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    @property
    def acked(self) -> int:
        return self._acked

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def pending_messages(self) -> list[tuple[int, list[bytes]]]:
        """Unacknowledged batches (seq, frames), oldest first: save them to resend after a restart."""
        with self._lock:
            return [(seq, [bytes(f) for f in unpack(wire)]) for seq, (wire, _) in self._pending.items()]

    def restore_pending(self, messages: list[tuple[int, list[bytes]]]) -> None:
        """Queue batches saved by `pending_messages` in an earlier run (before start())."""
        with self._lock:
            for seq, frames in sorted(messages):
                self._pending[seq] = (pack(frames), -np.inf)
                self._next_seq = max(self._next_seq, seq + 1)

    def latest_weights(self) -> tuple[int, bytes] | None:
        with self._lock:
            w = self._weights
            if w is None or w[0] == self._weights_taken:
                return None
            self._weights_taken = w[0]
            return w

    def wait_acked(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pending == 0:
                return True
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

    def start(self) -> "ActorClient":
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="actor-client", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def __enter__(self) -> "ActorClient":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the network thread ---
    def _run(self) -> None:
        ctx = zmq.Context()
        sock = _socket(ctx, zmq.DEALER, self.config)
        sock.setsockopt(zmq.IMMEDIATE, 1)          # queue nothing to a link that is not up
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        sock.setsockopt(zmq.SNDHWM, 1000)
        sock.connect(self.config.endpoint)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        last_weights_ask = -np.inf
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._resync is not None:
                    self._try_send(sock, pack(encode(MSG_RESYNC, {"actor_id": self.actor_id,
                                                                  "next_kept": self._resync}, token=self.config.token)))
                    self._resync = None
                self._send_due(sock, now)
                if now - last_weights_ask >= self.weights_poll_s:
                    have = None if self._weights is None else self._weights[0]
                    self._try_send(sock, pack(encode(MSG_GET_WEIGHTS, {"actor_id": self.actor_id,
                                                                       "have_version": have}, token=self.config.token)))
                    last_weights_ask = now
                if poller.poll(20):
                    while True:
                        try:
                            parts = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._receive(parts)
        finally:
            sock.close()
            ctx.term()

    @staticmethod
    def _try_send(sock: zmq.Socket, wire: bytes) -> bool:
        try:
            sock.send(wire, zmq.NOBLOCK)
            return True
        except zmq.Again:  # no link (IMMEDIATE) or a full pipe: the batch stays pending
            return False

    def _send_due(self, sock: zmq.Socket, now: float) -> None:
        with self._lock:
            due = [(seq, wire) for seq, (wire, sent) in self._pending.items()
                   if now - sent >= self.config.resend_after_s]
        for seq, wire in due:  # oldest first: the learner applies them in order
            if not self._try_send(sock, wire):
                break
            with self._lock:
                if seq in self._pending:
                    self._pending[seq] = (wire, now)

    def _receive(self, parts: list[bytes]) -> None:
        try:
            if len(parts) != 1:
                raise MessageRefused("malformed", f"a multipart message of {len(parts)} frames")
            frames = unpack(parts[0])
            msg_type, header, arrays = decode(frames, self.config.token, self.config.max_message_bytes, TO_ACTOR)
        except MessageRefused as e:
            self.refused[e.reason] += 1
            log.warning("refused a message from the learner: %s", e)
            return
        if msg_type == MSG_ACK:
            acked = header.get("acked")
            if isinstance(acked, int):
                with self._lock:
                    for seq in [s for s in self._pending if s <= acked]:
                        del self._pending[seq]
                    self._acked = max(self._acked, acked)
                    oldest = next(iter(self._pending), self._next_seq)
                    self._resync = oldest if acked + 1 < oldest else None
                # a batch the learner refused (it arrived after a gap) stays pending and goes out
                # again after resend_after_s, after the missing one
        elif msg_type == MSG_WEIGHTS:
            version, blob = header.get("version"), arrays.get("safetensors")
            if isinstance(version, int) and blob is not None:
                with self._lock:
                    self._weights = (version, blob.tobytes())


def free_port() -> int:
    """A TCP port free on the loopback interface now (for tests and local sessions)."""
    with pysocket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_messages(path, messages: list[tuple[int, list[bytes]]]) -> None:
    """Save framed messages (e.g. unacknowledged batches) to one file, atomically."""
    import os
    from pathlib import Path

    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(messages)))
        for seq, frames in messages:
            f.write(struct.pack("<QQ", seq, len(frames)))
            for fr in frames:
                f.write(struct.pack("<Q", len(fr)))
                f.write(fr)
    os.replace(tmp, path)


def read_messages(path) -> list[tuple[int, list[bytes]]]:
    with open(path, "rb") as f:
        data = f.read()
    out, pos = [], 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise ValueError(f"{path} is truncated")
        chunk = data[pos:pos + n]
        pos += n
        return chunk

    (count,) = struct.unpack("<Q", take(8))
    for _ in range(count):
        seq, n = struct.unpack("<QQ", take(16))
        out.append((seq, [take(struct.unpack("<Q", take(8))[0]) for _ in range(n)]))
    return out
