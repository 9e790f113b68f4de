"""Checkpoints carry a manifest of checksums; resume falls back to the newest readable one when the
last is damaged, and SIGTERM checkpoints like Ctrl-C."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from policy.checkpoint import (
    MANIFEST,
    CheckpointError,
    last_checkpoint,
    load_checkpoint,
    load_newest_checkpoint,
    verify_checkpoint,
)
from policy.config import preset
from policy.training import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
ENV = "chunkbot/PointReach-v0"


def tiny_job(out: Path, steps: int, **kw) -> TrainConfig:
    policy = preset("qc", num_critics=2, critic_hidden_dims=[16], actor_hidden_dims=[16], batch_size=16)
    return TrainConfig(**{**dict(env_name=ENV, policy=policy, num_demos=2, steps=steps, warmup_steps=20,
                                 eval_every=0, eval_episodes=1, save_every=30, output_dir=str(out),
                                 progress_bar=False, num_threads=1), **kw})


def checkpoint(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"{step:09d}"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.fixture
def run_of_two_checkpoints(tmp_path) -> Path:
    train(tiny_job(tmp_path, steps=60))  # checkpoints at env steps 30 and 60
    assert last_checkpoint(tmp_path) == checkpoint(tmp_path, 60)
    return tmp_path


def test_a_checkpoints_manifest_lists_the_sha256_of_every_file_in_it(run_of_two_checkpoints):
    ckpt = checkpoint(run_of_two_checkpoints, 60)
    listed = json.loads((ckpt / MANIFEST).read_text())["sha256"]
    on_disk = {p.relative_to(ckpt).as_posix() for p in ckpt.rglob("*") if p.is_file() and p.name != MANIFEST}
    assert set(listed) == on_disk and "pretrained_model/model.safetensors" in listed
    assert all(len(digest) == 64 for digest in listed.values())
    verify_checkpoint(ckpt)


def test_one_flipped_byte_in_a_checkpoint_fails_its_checksum_on_load(run_of_two_checkpoints):
    weights = checkpoint(run_of_two_checkpoints, 60) / "training_state" / "learner.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one weight changed: only the checksum can tell
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="learner.safetensors does not match its checksum"):
        load_checkpoint(checkpoint(run_of_two_checkpoints, 60))


def test_exporting_a_damaged_checkpoint_is_refused(run_of_two_checkpoints, tmp_path):
    from export import export_policy

    weights = checkpoint(run_of_two_checkpoints, 60) / "pretrained_model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-8] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors does not match its checksum"):
        export_policy(run_of_two_checkpoints, tmp_path / "actor.onnx", dynamo=False)
    assert not (tmp_path / "actor.onnx").exists()


def test_resume_after_a_truncated_model_safetensors_falls_back_to_the_previous_checkpoint(run_of_two_checkpoints,
                                                                                          caplog):
    out = run_of_two_checkpoints
    truncate(checkpoint(out, 60) / "pretrained_model" / "model.safetensors")
    with caplog.at_level(logging.WARNING, logger="policy.checkpoint"):
        train(tiny_job(out, steps=90, resume=True))
    warnings = [r.getMessage() for r in caplog.records if r.name == "policy.checkpoint"]
    assert len(warnings) == 1, warnings
    assert "000000060: pretrained_model/model.safetensors does not match its checksum" in warnings[0]
    assert warnings[0].endswith(f"resuming from {checkpoint(out, 30)}, the newest readable one")
    # the run went on from step 30: 60 was written again (whole), then 90
    _, (policy, learner, buffers, extra) = load_newest_checkpoint(out)
    assert extra["env_step"] == 90 and len(buffers["online"]) == 90
    verify_checkpoint(checkpoint(out, 60))


def test_a_truncated_model_safetensors_without_a_manifest_still_falls_back(run_of_two_checkpoints, caplog):
    """Checkpoints written before manifests existed: the load error itself marks the checkpoint damaged."""
    out = run_of_two_checkpoints
    for step in (30, 60):
        (checkpoint(out, step) / MANIFEST).unlink()
    truncate(checkpoint(out, 60) / "pretrained_model" / "model.safetensors")
    with caplog.at_level(logging.WARNING, logger="policy.checkpoint"):
        found, (_, _, _, extra) = load_newest_checkpoint(out)
    assert found == checkpoint(out, 30) and extra["env_step"] == 30
    assert "000000060 cannot be loaded (SafetensorError" in caplog.text


def test_resume_with_no_readable_checkpoint_is_a_one_line_error(tmp_path, capsys):
    from tools.train import main

    train(tiny_job(tmp_path, steps=30))
    truncate(checkpoint(tmp_path, 30) / "pretrained_model" / "model.safetensors")
    with pytest.raises(SystemExit) as exit_info:
        main([f"--env-name={ENV}", "--num_demos=2", "--steps=60", "--warmup_steps=20", "--eval_every=0",
              "--eval_episodes=1", "--progress_bar=false", "--num_threads=1", f"--output_dir={tmp_path}",
              "--resume=true", "--policy.critic_hidden_dims=[16]", "--policy.actor_hidden_dims=[16]"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: no readable checkpoint in") and "start a new --output_dir" in err


def test_a_hil_learner_resumes_from_the_newest_readable_checkpoint(tmp_path):
    from hil.batch import robot_features
    from hil.learner import HILLearner, HILLearnerConfig

    config = HILLearnerConfig(learning_starts=1_000_000)
    learner = HILLearner(preset("qc", num_critics=2, critic_hidden_dims=[16], actor_hidden_dims=[16]), config)
    header = {"features": robot_features(3, ["a", "b"], {}, 30.0, np.full(2, -1.0), np.ones(2)), "terminated": False,
              "episode": 0, "end": "time_limit"}
    for _ in range(2):  # episodes of 5 steps, a checkpoint after each: env steps 5 and 10
        z = lambda *shape: np.zeros(shape, np.float32)  # noqa: E731
        learner.add_episode(header, {"state": z(5, 3), "action": z(5, 2), "reward": z(5),
                                     "intervention": np.zeros(5, bool),
                                     "final_state": np.zeros((1, 3), np.float32)})
        learner.save(tmp_path)
    truncate(checkpoint(tmp_path, 10) / "training_state" / "online_buffer.npz")
    resumed, extra = HILLearner.resume(tmp_path, config)
    assert resumed.env_steps == 5 and extra["env_steps"] == 5 and len(resumed.online) == 5


@pytest.mark.slow
def test_sigterm_during_training_writes_a_checkpoint_to_resume_from(tmp_path):
    cmd = [sys.executable, "-m", "tools.train", f"--env-name={ENV}", "--num_demos=2", "--steps=1000000",
           "--warmup_steps=20", "--eval_every=0", "--eval_episodes=1", "--save_every=0", "--log_every=10",
           "--progress_bar=false", "--num_threads=1", f"--output_dir={tmp_path}",
           "--policy.critic_hidden_dims=[16]", "--policy.actor_hidden_dims=[16]"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and '"loss_critic"' in metrics.read_text():
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "--resume=true" in err
    found, (_, _, _, extra) = load_newest_checkpoint(tmp_path)  # save_every=0: only the SIGTERM wrote one
    assert extra["env_step"] > 20
