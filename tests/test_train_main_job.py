"""The main job (`python -m tools.train`): demos recorded as a LeRobotDataset, an evaluated checkpoint,
and Ctrl-C that keeps a checkpoint to resume from."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robot.recording import open_dataset
from tests.signals import ctrl_c_live

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--env-name=chunkbot/SO101Reach-v0", "--num_demos=2", "--warmup_steps=20", "--eval_episodes=1",
         "--eval_every=0", "--num_threads=1", "--progress_bar=false", "--policy.batch_size=32"]


def _train(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.train", *SMALL, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_main_job_records_demos_as_a_dataset_and_ends_with_an_evaluated_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = _train("--steps=60", f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    demos = open_dataset("local/so101_reach_demos", out / "demos")
    assert demos.num_episodes == 2
    assert (out / "checkpoints" / "last" / "pretrained_model" / "model.safetensors").is_file()
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in lines if "eval/success_rate" in r]
    assert evals and evals[-1]["env_step"] == 60  # evaluated at the end although eval_every=0


@pytest.mark.slow
def test_ctrl_c_during_training_keeps_a_checkpoint_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "tools.train", *SMALL, "--steps=100000", f"--output_dir={out}", "--log_every=10"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_live,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and any('"loss_critic"' in line for line in metrics.read_text().splitlines()):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)  # a loaded machine: the checkpoint write, then exit
    assert proc.returncode == 130, err[-3000:]
    assert "--resume=true" in err
    step_dirs = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    assert step_dirs and step_dirs[-1] > 20
    resumed = _train(f"--steps={step_dirs[-1] + 30}", f"--output_dir={out}", "--resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert max(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit()) == step_dirs[-1] + 30


@pytest.mark.slow
def test_evaluation_episodes_are_shown_as_chunks_in_a_rerun_recording(tmp_path):
    from robot.viz.readback import read_entity_rows

    rrd = tmp_path / "eval.rrd"
    proc = _train("--steps=40", "--num_demos=1", f"--output_dir={tmp_path / 'run'}", f"--viz.rrd={rrd}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_entity_rows(rrd)
    assert any("chunk" in path for path in rows), sorted(rows)
