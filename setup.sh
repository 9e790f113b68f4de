#!/usr/bin/env bash
# Installs chunkbot into .venv (Python 3.12, pinned dependencies). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3.12}
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "error: $PY not found. chunkbot needs Python 3.12 (LeRobot 0.6 requires it)." >&2
  echo "       With pyenv: 'pyenv install 3.12' (this repo's .python-version selects it)." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
  rm -rf .venv
  "$PY" -m venv .venv
fi
# uv resolves and installs the pinned set in seconds where pip takes minutes (torch alone is GBs).
.venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
# The other two packages are LeRobot plugins (plugins/): with lerobot_robot_chunkbot, LeRobot's own tools
# offer chunkbot's simulated arms and scripted teleoperator (lerobot-record --robot.type=sim_so101 ...);
# with lerobot_policy_chunkbot, LeRobot's policy loaders read chunkbot checkpoints (type chunkbot_qc_sac).
.venv/bin/uv pip install --quiet --python .venv/bin/python -e ".[test,bench]" -e plugins/lerobot_robot_chunkbot \
  -e plugins/lerobot_policy_chunkbot
.venv/bin/python -c "import lerobot, torch, mujoco, onnxruntime, rerun; print(f'chunkbot ready: lerobot {lerobot.__version__}, torch {torch.__version__}, mujoco {mujoco.__version__}')"
