#!/usr/bin/env bash
# One prepared GPU check (a lent machine gives a session 15 minutes): the CUDA-graph update's equality tests,
# then the learner and pixel-update benchmarks, eager and graphed, side by side with LeRobot's SAC: the three
# target numbers first, the extras (UTD 4, compiled critics) after them, so a cut-short run still has them.
# Run from the repo root on the device after installing .whl/ (benchmarks/gpu/fetch_wheels.sh):
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
#       .whl/*.whl && export PYTHONPATH=/tmp/site || exit; bash benchmarks/gpu/check.sh
# Output: $OUT/gpu_check.txt (and each part's own log).
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}; mkdir -p "$OUT"
PY=${PYTHON:-python3}
log() { echo "== $* ($(date -u +%H:%M:%S))" | tee -a "$OUT/gpu_check.txt"; }
log "device"; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a "$OUT/gpu_check.txt"
log "tests: CUDA graph equals eager"
timeout 240 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_graph.py 2>&1 | tail -n 25 | tee -a "$OUT/gpu_check.txt"
log "bench_learner --device cuda (UTD 1)"
timeout 200 "$PY" -m benchmarks.bench_learner --device cuda --rounds 5 --updates 40 2>&1 | tail -n 6 | tee -a "$OUT/gpu_check.txt"
log "pixel update, 2 cameras 128x128, batch 256, pool 1 and 2 (the pixel recipe's), fp32 and bf16 taking turns"
# one update is 0.43 TFLOP at pool 1 and 0.09 at pool 2 (FlopCounterMode): 500 updates/s asks 217 or 46 TFLOP/s,
# tensor-core work either way, hence bf16 beside fp32 (convolutions already run in TF32 by default)
timeout 240 "$PY" -m benchmarks.pixel_update_time --device cuda --size 128 --configs 1:256 2:256 --updates 50 \
    --graph --bf16 2>&1 | tail -n 8 | tee -a "$OUT/gpu_check.txt"
log "bench_learner --device cuda --utd 4"
timeout 120 "$PY" -m benchmarks.bench_learner --device cuda --rounds 3 --updates 20 --utd 4 2>&1 | tail -n 6 | tee -a "$OUT/gpu_check.txt"
log "bench_learner --device cuda --compile (size a)"
timeout 200 "$PY" -m benchmarks.bench_learner --device cuda --rounds 3 --updates 40 --sizes a --compile 2>&1 | tail -n 5 | tee -a "$OUT/gpu_check.txt"
log "done"
