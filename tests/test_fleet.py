"""The fleet load test at a short scale: 3 actor processes stream to one learner on loopback, the
learner and an actor are SIGKILLed and restarted mid-run, and not one transition is lost or doubled
(benchmarks/bench_fleet.py runs it at full scale)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_fleet_with_learner_and_actor_killed_mid_run_loses_and_duplicates_no_transition(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_fleet", "--actors=3", "--duration_s=10", "--episode_steps=20",
         "--episode_period_s=0.2", "--checkpoint_every_s=2", "--kill_learner_at=0.3", "--kill_actor_at=0.6",
         f"--out={tmp_path / 'fleet'}"],
        cwd=ROOT, env={**os.environ, "CHUNKBOT_LINK_TOKEN": "fleet", "MUJOCO_GL": "egl"}, capture_output=True,
        text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["transitions_expected"] > 0
    assert result["transitions_in_learner"] == result["transitions_expected"]
    assert (result["lost"], result["duplicated"], result["unexpected"], result["pending_at_end"]) == (0, 0, 0, 0)
    log = (tmp_path / "fleet" / "learner.log").read_text()
    assert log.count("learner listening") == 2                      # killed once and restarted
    assert log.count("connected from") >= 3                        # every actor was seen connecting
