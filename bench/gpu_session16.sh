#!/bin/bash
# Sixteenth session (an H200): the SelectiveScan TensorRT plugin library (edgemv/ops/cuda/trt_scan_plugin.cu) built
# with nvcc against TensorRT 10.3 and 11.1 headers (carried in .trt-headers/, fetched from github.com/NVIDIA/TensorRT,
# not committed) and driven through its IPluginV3 interfaces on the GPU against float64 (tests/test_trt_plugin.py);
# then MambaVision-T end to end on this H200 with the current model (eager and reduce-overhead, .half(), batch 128).
# Output in $OUT/session16.log.
set -u
source bench/device_header.sh
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s16 PYTHONUNBUFFERED=1
{
device_header --build
python -m pytest -q -p no:cacheprovider -rs tests/test_trt_plugin.py 2>&1 | tail -15
python bench/e2e.py --impls triton --modes eager reduce-overhead 2>&1 | tail -8
date -u
} 2>&1 | tee "${OUT:-/tmp}/session16.log"
