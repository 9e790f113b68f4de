"""The actor <-> learner ZeroMQ transport: framing, refusals, exactly-once delivery over a dropped link."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from policy.transport import (MSG_ACK, MSG_GET_WEIGHTS, MSG_TRANSITIONS, ActorClient, LearnerServer, MessageRefused,
                              TransportConfig, TransportError, decode, encode, free_port, pack, unpack)

TOKEN = "s3cret"
ROOT = Path(__file__).resolve().parents[1]


def _wait(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _batch(i: int) -> dict[str, np.ndarray]:
    return {"state": np.full((3, 4), i, np.float32), "step": np.arange(3, dtype=np.int64) + 3 * i}


class _Inbox:
    """What the learner applied, in order."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, dict, dict]] = []

    def __call__(self, actor: str, header: dict, arrays: dict) -> None:
        self.batches.append((actor, header, {k: v.copy() for k, v in arrays.items()}))


def _config(**kw) -> TransportConfig:
    return TransportConfig(port=free_port(), token=TOKEN, resend_after_s=0.2, **kw)


def test_arrays_round_trip_through_the_framed_format():
    arrays = {"state": np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32),
              "done": np.array([False, True]), "img": np.zeros((2, 4, 4, 3), np.uint8)}
    msg_type, header, out = decode(encode(MSG_TRANSITIONS, {"seq": 3}, arrays, TOKEN), TOKEN)
    assert msg_type == MSG_TRANSITIONS and header == {"seq": 3}
    for k, v in arrays.items():
        assert out[k].dtype == v.dtype and np.array_equal(out[k], v)


def test_a_message_signed_with_another_token_is_refused():
    frames = encode(MSG_TRANSITIONS, {"seq": 0}, _batch(0), token="wrong")
    with pytest.raises(MessageRefused) as e:
        decode(frames, TOKEN)
    assert e.value.reason == "bad_mac"


def test_a_tampered_array_frame_is_refused():
    frames = encode(MSG_TRANSITIONS, {"seq": 0}, _batch(3), TOKEN)
    frames[2] = bytes(len(frames[2]))
    with pytest.raises(MessageRefused, match="bad_mac"):
        decode(frames, TOKEN)


def test_an_oversized_message_is_refused():
    frames = encode(MSG_TRANSITIONS, {"seq": 0}, {"big": np.zeros(10_000, np.uint8)}, TOKEN)
    with pytest.raises(MessageRefused) as e:
        decode(frames, TOKEN, max_bytes=5_000)
    assert e.value.reason == "too_large"


@pytest.mark.parametrize("mutate", [
    lambda f: f[:2],                                                  # no mac frame
    lambda f: [f[0], b"not json", *f[2:]],                            # header not JSON
    lambda f: [f[0], json.dumps({"arrays": [["x", "object", [1]]]}).encode(), b"\0" * 8],  # object dtype
    lambda f: [f[0], json.dumps({"arrays": [["x", "float32", [4]]]}).encode(), b"\0" * 12],  # size mismatch
    lambda f: [f[0], json.dumps({"arrays": [["x", "float32", [1]]]}).encode()],             # missing frame
], ids=["no_mac", "header_not_json", "object_dtype", "size_mismatch", "missing_array_frame"])
def test_a_malformed_message_is_refused(mutate):
    from policy.transport import _mac

    body = mutate(encode(MSG_TRANSITIONS, {"seq": 0}, {"x": np.zeros(1, np.float32)}, TOKEN)[:-1])
    frames = body + [_mac(TOKEN.encode(), body)] if len(body) >= 2 else body
    with pytest.raises(MessageRefused) as e:
        decode(frames, TOKEN)
    assert e.value.reason in ("malformed", "bad_mac")


def test_unknown_and_wrong_direction_message_types_are_refused():
    from policy.transport import TO_LEARNER, _mac

    body = [b"pickle", json.dumps({"arrays": []}).encode()]
    with pytest.raises(MessageRefused, match="bad_type"):
        decode(body + [_mac(TOKEN.encode(), body)], TOKEN)
    with pytest.raises(MessageRefused, match="bad_type"):  # an ack is for the actor, not the learner
        decode(encode(MSG_ACK, {"acked": 1}, token=TOKEN), TOKEN, allowed=TO_LEARNER)


def test_the_learner_refuses_to_listen_beyond_loopback_without_a_token():
    with pytest.raises(TransportError, match="token"):
        LearnerServer(TransportConfig(host="0.0.0.0", port=free_port()), _Inbox())
    LearnerServer(TransportConfig(host="0.0.0.0", port=free_port(), token=TOKEN), _Inbox())  # accepted


def test_the_server_applies_nothing_from_a_client_with_the_wrong_token():
    cfg = _config()
    inbox = _Inbox()
    with LearnerServer(cfg, inbox) as server, ActorClient(TransportConfig(port=cfg.port, token="wrong",
                                                                         resend_after_s=0.2)) as client:
        client.send_transitions(_batch(0))
        assert _wait(lambda: server.refused["bad_mac"] >= 2)
        assert inbox.batches == [] and client.pending == 1


# The misbehaving peer runs in its own process: ZeroMQ cuts a peer off when its message is over MAXMSGSIZE,
# and what happens to that peer is not under test; the server's survival is.
_BAD_PEER = """
import sys, time, numpy as np, zmq
from policy.transport import MSG_TRANSITIONS, encode, pack
port, token = int(sys.argv[1]), sys.argv[2]
ctx = zmq.Context()
def dealer():
    s = ctx.socket(zmq.DEALER); s.setsockopt(zmq.LINGER, 0); s.connect(f"tcp://127.0.0.1:{port}"); return s
raw = dealer()
# over the limit: ZeroMQ drops the connection before anything is buffered
raw.send(pack(encode(MSG_TRANSITIONS, {"actor_id": "a", "seq": 0}, {"x": np.zeros(50_000, np.uint8)}, token)))
time.sleep(0.2)
raw.close()
raw = dealer()
raw.send_multipart(encode(MSG_TRANSITIONS, {"actor_id": "a", "seq": 0}, {"x": np.zeros(4, np.uint8)}, token))
raw.send(b"\\x80\\x04pickle" + b"x" * 32)
raw.send(pack(encode(MSG_TRANSITIONS, {"actor_id": "a", "seq": 0}, {"x": np.zeros(4, np.uint8)}, "not-" + token)))
time.sleep(0.2)
"""


def test_the_server_drops_oversized_and_foreign_messages_and_keeps_serving():
    cfg = _config(max_message_bytes=20_000)
    inbox = _Inbox()
    with LearnerServer(cfg, inbox) as server:
        subprocess.run([sys.executable, "-c", _BAD_PEER, str(cfg.port), TOKEN], cwd=ROOT, timeout=60,
                       capture_output=True)
        # the multipart message and the pickle are malformed, the foreign token fails the MAC
        assert _wait(lambda: server.refused["malformed"] == 2 and server.refused["bad_mac"] == 1)
        assert inbox.batches == []
        with ActorClient(TransportConfig(port=cfg.port, token=TOKEN, resend_after_s=0.2)) as client:
            client.send_transitions(_batch(7))
            assert client.wait_acked(10.0)
        assert len(inbox.batches) == 1 and np.array_equal(inbox.batches[0][2]["state"], _batch(7)["state"])


def test_a_message_packs_into_one_wire_frame_and_back():
    frames = encode(MSG_TRANSITIONS, {"seq": 1}, _batch(3), TOKEN)
    back = unpack(pack(frames))
    assert [bytes(f) for f in back] == frames
    msg_type, header, arrays = decode(back, TOKEN)
    assert msg_type == MSG_TRANSITIONS and np.array_equal(arrays["state"], _batch(3)["state"])


@pytest.mark.parametrize("wire", [b"", b"\x02\x00\x00\x00", b"\xff\xff\xff\xff" + b"\x00" * 64,
                                  pack([b"transitions", b"{}", b"m" * 32])[:-1],
                                  pack([b"transitions", b"{}", b"m" * 32]) + b"!"])
def test_a_wire_frame_that_does_not_parse_is_refused(wire):
    with pytest.raises(MessageRefused, match="malformed"):
        unpack(wire)


def test_the_actor_refuses_a_batch_over_the_size_limit_before_sending_it():
    cfg = _config(max_message_bytes=20_000)
    client = ActorClient(cfg)              # not started: the check happens at the call
    with pytest.raises(TransportError, match="max_message_bytes"):
        client.send_transitions({"x": np.zeros(50_000, np.uint8)})
    assert client.pending == 0 and client.next_seq == 0
    client.send_transitions(_batch(0))
    assert client.pending == 1 and client.next_seq == 1


def test_a_dropped_link_loses_no_transition_and_duplicates_none():
    cfg = _config()
    inbox = _Inbox()
    server = LearnerServer(cfg, inbox).start()
    client = ActorClient(cfg).start()
    try:
        for i in range(5):
            client.send_transitions(_batch(i))
        assert client.wait_acked(10.0)
        server.stop()                                   # the link goes down (learner side closes)
        for i in range(5, 12):                          # the actor keeps producing meanwhile
            client.send_transitions(_batch(i))
        time.sleep(0.5)
        assert client.pending == 7                      # kept until acknowledged
        server.start()                                  # the link comes back on the same port
        assert client.wait_acked(15.0)
    finally:
        client.stop()
        server.stop()
    steps = np.concatenate([b[2]["step"] for b in inbox.batches])
    assert np.array_equal(steps, np.arange(36))         # every transition once, in order
    assert [b[1]["seq"] for b in inbox.batches] == list(range(12))


def test_a_batch_after_a_gap_waits_for_the_missing_one():
    cfg = _config()
    inbox = _Inbox()
    server = LearnerServer(cfg, inbox)
    ack = server.handle(encode(MSG_TRANSITIONS, {"actor_id": "a", "seq": 1}, _batch(1), TOKEN))
    assert inbox.batches == [] and decode(ack[0], TOKEN)[1]["acked"] == -1
    server.handle(encode(MSG_TRANSITIONS, {"actor_id": "a", "seq": 0}, _batch(0), TOKEN))
    server.handle(encode(MSG_TRANSITIONS, {"actor_id": "a", "seq": 0}, _batch(0), TOKEN))  # duplicate
    server.handle(encode(MSG_TRANSITIONS, {"actor_id": "a", "seq": 1}, _batch(1), TOKEN))
    assert [b[1]["seq"] for b in inbox.batches] == [0, 1]


def test_weights_reach_the_actor_and_resume_after_a_dropped_link():
    cfg = _config()
    server = LearnerServer(cfg, _Inbox()).start()
    client = ActorClient(cfg, weights_poll_s=0.05).start()
    try:
        server.publish_weights(1, b"one")
        assert client.wait_weights(10.0) == (1, b"one")
        server.stop()
        server.publish_weights(2, b"two")
        server.start()
        assert client.wait_weights(10.0) == (2, b"two")
        assert client.latest_weights() is None          # each version is handed out once
    finally:
        client.stop()
        server.stop()


def test_get_weights_before_any_are_published_answers_current():
    server = LearnerServer(_config(), _Inbox())
    reply = server.handle(encode(MSG_GET_WEIGHTS, {"actor_id": "a", "have_version": None}, token=TOKEN))
    assert decode(reply[0], TOKEN)[0] == b"weights_current"


def test_a_learner_restarted_from_an_older_checkpoint_resyncs_to_what_the_actor_still_holds():
    cfg = _config()
    inbox = _Inbox()
    server = LearnerServer(cfg, inbox).start()
    client = ActorClient(cfg).start()
    try:
        for i in range(3):
            client.send_transitions(_batch(i))
        assert client.wait_acked(10.0)
        server.stop()
        restarted = LearnerServer(cfg, inbox, initial_seq={client.actor_id: 1}).start()  # lost batches 1, 2
        try:
            client.send_transitions(_batch(3))
            assert client.wait_acked(15.0)
        finally:
            restarted.stop()
    finally:
        client.stop()
        server.stop()
    assert [b[1]["seq"] for b in inbox.batches] == [0, 1, 2, 3]   # batch 3 is applied, not stuck
    assert restarted.lost_batches == 2


def test_unacknowledged_batches_survive_an_actor_restart_on_disk(tmp_path):
    from policy.transport import read_messages, write_messages

    cfg = _config()
    client = ActorClient(cfg)                       # never started: the learner is unreachable
    for i in range(3):
        client.send_transitions(_batch(i))
    write_messages(tmp_path / "pending.bin", client.pending_messages())
    inbox = _Inbox()
    revived = ActorClient(cfg, actor_id=client.actor_id)
    revived.restore_pending(read_messages(tmp_path / "pending.bin"))
    assert revived.next_seq == 3
    with LearnerServer(cfg, inbox), revived:
        assert revived.wait_acked(10.0)
    assert [b[1]["seq"] for b in inbox.batches] == [0, 1, 2]
