"""SIGKILL and SIGTERM at bad moments: the actor's outbox and the learner's journal and checkpoint
keep every batch that was stored or acknowledged, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from link import ActorLink, free_port
from link.wire import encode  # noqa: F401  (the actor script below imports it too)
from tests.link_helpers import TOKEN, Inbox, config, server

ROOT = Path(__file__).resolve().parents[1]

ACTOR = """
import sys, time, numpy as np
from link import ActorLink, TransportConfig
from tests.link_helpers import batch
actor = ActorLink(TransportConfig(port=int(sys.argv[1])), sys.argv[2]).start()   # nobody listens there
for i in range(5):
    actor.submit({}, batch(i))
print("stored", flush=True)
time.sleep(600)
"""


def env() -> dict[str, str]:
    return {**os.environ, "CHUNKBOT_LINK_TOKEN": TOKEN, "MUJOCO_GL": "egl"}


def test_batches_stored_by_an_actor_survive_its_sigkill_and_go_out_once_after_the_restart(tmp_path, monkeypatch):
    monkeypatch.setenv("CHUNKBOT_LINK_TOKEN", TOKEN)
    cfg = config()
    proc = subprocess.Popen([sys.executable, "-c", ACTOR, str(cfg.port), str(tmp_path / "outbox")], cwd=ROOT,
                            env=env(), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "stored"
    finally:
        proc.kill()
        proc.wait(30)
    inbox = Inbox()
    with server(cfg, inbox), ActorLink(cfg, tmp_path / "outbox") as resumed:
        assert resumed.pending == 5
        assert resumed.wait_acked(15.0)
    assert np.array_equal(inbox.steps(), np.arange(15))


def learner(out: Path, port: int, resume: bool) -> subprocess.Popen:
    args = [sys.executable, "-m", "tools.learner", f"--output_dir={out}", f"--transport.port={port}",
            "--policy.critic_hidden_dims=[32,32]", "--policy.actor_hidden_dims=[32,32]", "--policy.num_critics=2",
            "--policy.act_chunk_size=5", "--learner.learning_starts=100000", "--checkpoint_every_s=1e9",
            f"--resume={str(resume).lower()}"]
    return subprocess.Popen(args, cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_learner_killed_keeps_every_acknowledged_episode_and_sigterm_checkpoints(tmp_path, monkeypatch):
    from hil.learner import HILLearner
    from tests.test_hil_learner_guards import episode

    monkeypatch.setenv("CHUNKBOT_LINK_TOKEN", TOKEN)
    port, out = free_port(), tmp_path / "learner"
    cfg = config(port=port)
    sent = []
    with ActorLink(cfg, tmp_path / "outbox") as actor:
        proc = learner(out, port, resume=False)
        for seed in range(3):
            meta, arrays = episode(seed=seed)
            actor.submit(meta, arrays)
            sent.append(arrays["state"])
        assert actor.wait_acked(120.0)
        proc.send_signal(signal.SIGKILL)                  # after the acks, before any checkpoint
        proc.wait(30)
        assert not (out / "checkpoints").exists()
        proc = learner(out, port, resume=True)            # replays its journal
        meta, arrays = episode(seed=3)
        actor.submit(meta, arrays)
        sent.append(arrays["state"])
        assert actor.wait_acked(120.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "checkpointing" in err and "actor" in err and "connected" in err
    hil, _ = HILLearner.resume(out)
    assert hil.env_steps == 80 and hil.episodes == 4
    stored = hil.online.stored_states()[hil.online.acted[:hil.online.size].cpu().numpy()]
    assert np.array_equal(stored, np.concatenate(sent))   # each acknowledged step once, in order
