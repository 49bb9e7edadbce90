#!/bin/bash
# Fifteenth session, second call (an H100): the model now runs its scan as a child module (mixer.scan, for the FP16
# Q/DQ graph's float32 scope); check the GPU paths after that change: the GPU tests of the scan and the model, then
# MambaVision-T end to end with 'auto' (eager and torch.compile reduce-overhead, .half(), batch 128). Output in
# $OUT/session15b.log.
set -u
source bench/device_header.sh
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s15b PYTHONUNBUFFERED=1
{
device_header --build
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py tests/test_scan.py tests/test_scan_tune.py \
  tests/test_models.py 2>&1 | tail -3
python bench/e2e.py --impls triton --modes eager reduce-overhead 2>&1 | tail -8
date -u
} 2>&1 | tee "${OUT:-/tmp}/session15b.log"
