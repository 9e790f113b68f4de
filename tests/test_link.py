"""The actor-learner link on gRPC: credentials, exactly-once delivery, rejections, weights, warnings."""

from __future__ import annotations

import dataclasses
import logging
import time

import grpc
import numpy as np
import pytest

from link import ActorLink, DeliveryState, LinkConfigError, LinkServer, TransportConfig
from link.certs import make_cert_pair
from link.server import SEND_BATCH
from link.wire import decode_json, encode
from tests.link_helpers import TOKEN, Inbox, batch, config, server, wait_for


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("CHUNKBOT_LINK_TOKEN", TOKEN)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_cert_pair(tmp_path_factory.mktemp("certs"), ["127.0.0.1", "localhost"])


def test_the_learner_listens_beyond_loopback_only_with_a_token_and_tls(certs, monkeypatch):
    cert, key = certs
    with pytest.raises(LinkConfigError, match="TLS"):
        LinkServer(TransportConfig(host="0.0.0.0"), Inbox(), DeliveryState("S"))
    monkeypatch.delenv("CHUNKBOT_LINK_TOKEN")
    with pytest.raises(LinkConfigError, match="a token"):
        LinkServer(TransportConfig(host="0.0.0.0", tls_cert=cert, tls_key=key), Inbox(), DeliveryState("S"))
    monkeypatch.setenv("CHUNKBOT_LINK_TOKEN", TOKEN)
    LinkServer(TransportConfig(host="0.0.0.0", tls_cert=cert, tls_key=key), Inbox(), DeliveryState("S"))  # accepted
    assert TransportConfig().host == "127.0.0.1"                                      # loopback by default


def test_the_token_comes_from_the_environment_or_a_file_never_a_flag(tmp_path, monkeypatch):
    assert "token" not in {f.name for f in dataclasses.fields(TransportConfig)}    # no --transport.token flag
    assert TransportConfig().token() == TOKEN
    monkeypatch.delenv("CHUNKBOT_LINK_TOKEN")
    path = tmp_path / "token"
    path.write_text("from-a-file\n")
    path.chmod(0o600)
    assert TransportConfig(token_file=path).token() == "from-a-file"
    with pytest.raises(LinkConfigError, match="cannot read"):
        TransportConfig(token_file=tmp_path / "missing").token()


def test_batches_go_over_tls_to_a_learner_with_the_certificate(tmp_path, certs):
    cert, key = certs
    cfg = config(tls_cert=cert, tls_key=key)
    inbox = Inbox()
    with server(cfg, inbox), ActorLink(cfg, tmp_path / "outbox") as actor:
        actor.submit({}, batch(0))
        assert actor.wait_acked(10.0)
    assert len(inbox.batches) == 1


def test_an_actor_without_the_certificate_cannot_reach_a_tls_learner_and_says_so(tmp_path, certs, caplog):
    cert, key = certs
    cfg = config(tls_cert=cert, tls_key=key, warn_after_s=0.5)
    inbox = Inbox()
    with server(cfg, inbox), ActorLink(TransportConfig(port=cfg.port, warn_after_s=0.5), tmp_path / "o") as actor:
        actor.submit({}, batch(0))
        assert wait_for(lambda: actor.problem is not None, 10.0)
    assert inbox.batches == [] and actor.pending == 1 and "has not answered" in actor.problem


def test_a_wrong_token_applies_nothing_and_warns_within_seconds(tmp_path, monkeypatch, caplog):
    cfg = config()
    inbox = Inbox()
    with server(cfg, inbox) as learner:
        monkeypatch.setenv("CHUNKBOT_LINK_TOKEN", "wrong")
        with caplog.at_level(logging.WARNING), ActorLink(cfg, tmp_path / "outbox") as actor:
            actor.submit({}, batch(0))
            t0 = time.monotonic()
            assert wait_for(lambda: actor.problem is not None, 5.0)
            assert time.monotonic() - t0 < 3.0
    assert inbox.batches == [] and actor.pending == 1 and learner.refused["bad_token"] >= 1
    assert "refused this actor's token" in caplog.text and "CHUNKBOT_LINK_TOKEN" in caplog.text


def test_batches_stored_under_a_wrong_token_go_out_under_the_right_one_after_a_restart(tmp_path, monkeypatch):
    cfg = config()
    inbox = Inbox()
    with server(cfg, inbox):
        monkeypatch.setenv("CHUNKBOT_LINK_TOKEN", "wrong")
        with ActorLink(cfg, tmp_path / "outbox") as actor:
            for i in range(3):
                actor.submit({}, batch(i))
            assert wait_for(lambda: actor.problem is not None, 5.0)
        monkeypatch.setenv("CHUNKBOT_LINK_TOKEN", TOKEN)
        with ActorLink(cfg, tmp_path / "outbox") as resumed:   # the same outbox: --resume=true
            resumed.submit({}, batch(3))
            assert resumed.wait_acked(10.0)
    assert [b[1] for b in inbox.batches] == [{}] * 4
    assert np.array_equal(inbox.steps(), np.arange(12))


def test_a_learner_that_does_not_answer_is_reported_within_seconds(tmp_path, caplog):
    cfg = config(warn_after_s=1.0)      # nothing listens on this port
    with caplog.at_level(logging.WARNING), ActorLink(cfg, tmp_path / "outbox") as actor:
        actor.submit({}, batch(0))
        assert wait_for(lambda: actor.problem is not None, 5.0)
    assert "has not answered" in caplog.text and "tools.learner" in caplog.text and actor.pending == 1


def test_a_dropped_link_loses_no_transition_and_duplicates_none(tmp_path):
    cfg = config()
    inbox = Inbox()
    learner = server(cfg, inbox).start()
    actor = ActorLink(cfg, tmp_path / "outbox").start()
    try:
        for i in range(5):
            actor.submit({}, batch(i))
        assert actor.wait_acked(10.0)
        learner.stop()                                   # the link goes down (learner side closes)
        for i in range(5, 12):                           # the actor keeps producing meanwhile
            actor.submit({}, batch(i))
        time.sleep(0.5)
        assert actor.pending == 7                        # kept until acknowledged
        learner = LinkServer(cfg, inbox, learner.state).start()   # back on the same port
        assert actor.wait_acked(15.0)
    finally:
        actor.stop()
        learner.stop()
    assert np.array_equal(inbox.steps(), np.arange(36))   # every transition once, in order


def _raw_send(cfg: TransportConfig, header: dict, arrays: dict, oldest_kept: int, token: str = TOKEN) -> dict:
    with grpc.insecure_channel(cfg.target) as channel:
        raw = channel.unary_unary(SEND_BATCH)(encode(header, arrays), timeout=10, metadata=(
            ("authorization", f"Bearer {token}"), ("x-oldest-kept", str(oldest_kept))))
    return decode_json(raw)


def test_a_batch_after_a_gap_waits_for_the_missing_one_and_a_duplicate_is_not_applied_again():
    cfg = config()
    inbox = Inbox()
    with server(cfg, inbox):
        send = lambda seq, kept: _raw_send(cfg, {"actor_id": "a", "seq": seq, "meta": {}}, batch(seq), kept)  # noqa: E731
        assert send(1, 0) == {"acked": -1} and inbox.batches == []     # 0 is still held by the actor: wait
        assert send(0, 0) == {"acked": 0}
        assert send(0, 0) == {"acked": 0}                                # duplicate: acknowledged, not applied
        assert send(1, 1) == {"acked": 1}
    assert np.array_equal(inbox.steps(), np.arange(6))


def test_a_learner_restarted_from_an_older_state_resyncs_to_what_the_actor_still_holds(tmp_path):
    cfg = config()
    inbox = Inbox()
    with server(cfg, inbox) as learner, ActorLink(cfg, tmp_path / "outbox") as actor:
        for i in range(3):
            actor.submit({}, batch(i))
        assert actor.wait_acked(10.0)
        learner.stop()
        older = DeliveryState("S1", {actor.actor_id: 1})    # its checkpoint predates batches 1 and 2
        with LinkServer(cfg, inbox, older) as restarted:
            actor.submit({}, batch(3))
            assert actor.wait_acked(15.0)
    assert [int(b[2]["step"][0]) // 3 for b in inbox.batches] == [0, 1, 2, 3]   # batch 3 applied, not stuck
    assert restarted.actors[actor.actor_id].lost_batches == 2


def test_a_batch_that_can_never_be_accepted_is_answered_rejected_and_the_stream_moves_on(tmp_path):
    cfg = config()
    inbox = Inbox()
    with server(cfg, inbox) as learner, ActorLink(cfg, tmp_path / "outbox") as actor:
        actor.submit({}, batch(0))
        actor.submit({"bad": True}, batch(1))
        actor.submit({}, batch(2))
        assert actor.wait_acked(10.0)
    assert [int(b[2]["step"][0]) // 3 for b in inbox.batches] == [0, 2]
    assert [seq for seq, _ in actor.rejected] == [1] and learner.actors[actor.actor_id].rejected == 1


def test_the_actor_refuses_a_batch_over_the_size_limit_before_storing_it(tmp_path):
    actor = ActorLink(config(max_message_mb=0.01), tmp_path / "outbox")      # not started: checked at the call
    with pytest.raises(ValueError, match="max_message_mb"):
        actor.submit({}, {"x": np.zeros(50_000, np.uint8)})
    assert actor.pending == 0 and actor.next_seq == 0


def test_weights_reach_the_actor_once_per_version_and_resume_after_a_dropped_link(tmp_path):
    cfg = config()
    learner = server(cfg, Inbox()).start()
    actor = ActorLink(cfg, tmp_path / "outbox", weights_wait_s=0.5).start()
    try:
        learner.publish_weights(1, b"one")
        assert actor.wait_weights(10.0) == (1, b"one")
        assert actor.weights_latency_s is not None and actor.weights_latency_s < 5.0
        learner.stop()
        learner = LinkServer(cfg, Inbox(), learner.state).start()
        learner.publish_weights(2, b"two")
        assert actor.wait_weights(10.0) == (2, b"two")
        assert actor.latest_weights() is None           # each version is handed out once
    finally:
        actor.stop()
        learner.stop()


def test_older_weights_never_roll_the_actor_back_and_raise_the_learners_next_version(tmp_path):
    cfg = config()
    with server(cfg, Inbox()) as learner, ActorLink(cfg, tmp_path / "outbox", weights_wait_s=0.3) as actor:
        learner.publish_weights(5, b"v5")
        assert actor.wait_weights(10.0) == (5, b"v5")
    with server(cfg, Inbox()) as replayed, ActorLink(cfg, tmp_path / "outbox", weights_wait_s=0.3) as actor:
        replayed.publish_weights(2, b"v2")               # the same session answering with an older version
        assert actor.wait_weights(1.5) is None
        assert wait_for(lambda: replayed.version_floor == 5)   # its next version is published above 5
        replayed.publish_weights(6, b"v6")
        assert actor.wait_weights(10.0) == (6, b"v6")


def test_weights_from_another_learning_session_are_refused(tmp_path):
    cfg = config()
    with server(cfg, Inbox(), session="S1") as learner, ActorLink(cfg, tmp_path / "o", weights_wait_s=0.3) as actor:
        learner.publish_weights(1, b"one")
        assert actor.wait_weights(10.0) == (1, b"one")
    with server(cfg, Inbox(), session="S2") as other, ActorLink(cfg, tmp_path / "o", weights_wait_s=0.3) as actor:
        other.publish_weights(9, b"nine")
        assert actor.wait_weights(1.5) is None


def test_the_learner_reports_actors_their_transitions_and_weights(tmp_path, caplog):
    cfg = config()
    with caplog.at_level(logging.INFO), server(cfg, Inbox()) as learner:
        with ActorLink(cfg, tmp_path / "a") as a, ActorLink(cfg, tmp_path / "b") as b:
            a.submit({}, batch(0))
            b.submit({}, batch(1))
            b.submit({}, batch(2))
            assert a.wait_acked(10.0) and b.wait_acked(10.0)
            learner.publish_weights(3, b"w")
            line = learner.status_line()
    assert f"actor {a.actor_id} connected" in caplog.text and f"actor {b.actor_id} connected" in caplog.text
    assert f"actor {b.actor_id} sent its first batch (3 transitions)" in caplog.text
    assert "actors connected 2/2" in line and f"{a.actor_id[:8]} 3" in line and f"{b.actor_id[:8]} 6" in line
    assert "weights v3" in line


def test_a_weights_request_before_any_are_published_answers_current_after_its_wait():
    from link.server import GET_WEIGHTS
    from link.wire import encode_json

    cfg = config()
    with server(cfg, Inbox()), grpc.insecure_channel(cfg.target) as channel:
        t0 = time.monotonic()
        raw = channel.unary_unary(GET_WEIGHTS)(encode_json({"actor_id": "a", "floor": 0, "wait_s": 0.3}), timeout=10,
                                               metadata=(("authorization", f"Bearer {TOKEN}"),))
        assert decode_json(raw) == {"current": None, "session": "S1"} and time.monotonic() - t0 >= 0.25
