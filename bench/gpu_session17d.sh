#!/bin/bash
# Seventeenth session, last call: the final sources (precompile steps aside inside another async compile mode).
# The scan's GPU tests, then MambaVision-T's first eager call from empty caches once. Output in $OUT/session17d.log.
set -u
source bench/device_header.sh
export PYTHONUNBUFFERED=1
{
device_header
EDGEMV_CACHE_DIR=/tmp/c17d python -m pytest -q -p no:cacheprovider tests/test_scan_tune.py tests/test_scan_cuda_gpu.py \
  tests/test_scan.py tests/test_trt_plugin.py 2>&1 | tail -3
python bench/first_call_profile.py | grep -v " 0.00 s$"
date -u
} 2>&1 | tee "${OUT:-/tmp}/session17d.log"
