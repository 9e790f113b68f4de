#!/usr/bin/env bash
# Wheels the lent GPU machine lacks (it has python3.12 with torch, numpy, safetensors, onnxruntime and more,
# and cannot reach a package index), saved to .whl/ in the repo root, which git ignores. Versions are the
# ones the project's .venv resolved. Run here, then carry .whl/ with benchmarks/gpu/check.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
PY=${PYTHON:-.venv/bin/python}
pins=$("$PY" - <<'PY'
from importlib.metadata import version
names = ["lerobot", "draccus", "toml", "mergedeep", "typing-inspect", "mypy-extensions", "termcolor", "gymnasium",
         "farama-notifications", "datasets", "dill", "multiprocess", "deepdiff", "orderly-set", "dm-tree", "pyserial",
         "av", "pytz", "pytest", "pluggy", "iniconfig"]
print(" ".join(f"{n}=={version(n)}" for n in names))
PY
)
rm -rf .whl && mkdir .whl
# shellcheck disable=SC2086
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl $pins
du -sh .whl
