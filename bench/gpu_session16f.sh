#!/bin/bash
# Sixteenth session, last call (an H200): the GPU tests of the scan, its tuning and the plugin on the session's final
# sources (a failed CUDA build is no longer retried; the build runs beside the Triton candidates). Output in
# $OUT/session16f.log.
set -u
source bench/device_header.sh
export PYTHONUNBUFFERED=1 EDGEMV_CACHE_DIR=/tmp/c_final
{
device_header
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py tests/test_scan_tune.py tests/test_trt_plugin.py \
  tests/test_scan.py 2>&1 | tail -3
date -u
} 2>&1 | tee "${OUT:-/tmp}/session16f.log"
