#!/bin/bash
# Seventeenth session: the Triton candidates compiled together (scan_triton.precompile, Triton's async compile mode)
# before 'auto' times them. The scan's GPU tests, then MambaVision-T's first eager call (batch 128, fp16) from empty
# caches, each case in a fresh process: (1) nvcc's build beside the tuning, as a user meets it, twice; (2) the CUDA
# kernel built first, twice. Compare with bench/gpu_session17b.sh (one compile after another). Output in
# $OUT/session17c.log.
set -u
source bench/device_header.sh
export PYTHONUNBUFFERED=1
{
device_header
EDGEMV_CACHE_DIR=/tmp/c17c python -m pytest -q -p no:cacheprovider tests/test_scan_tune.py tests/test_scan_cuda_gpu.py \
  tests/test_scan.py 2>&1 | tail -3
for round in 1 2; do
  echo "== 1: empty caches, nvcc beside the tuning (round $round)"; python bench/first_call_profile.py
  echo "== 2: CUDA kernel built first (round $round)"; python bench/first_call_profile.py --prebuilt
done
date -u
} 2>&1 | tee "${OUT:-/tmp}/session17c.log"
