#!/bin/bash
# Sixteenth session, second call (an H200): nvcc --split-compile=0 for the CUDA scan kernel and the TensorRT plugin.
# Build time and kernel device times with and without it (bench/split_compile_ab.py, alternating twice, the first
# round with correctness), the plugin's tests on the split build, and MambaVision-T's first eager call from empty
# caches (edgemv's and Triton's) with and without it. Output in $OUT/session16b.log.
set -u
source bench/device_header.sh
export PYTHONUNBUFFERED=1
{
device_header
echo "| build | form | shape | dtype | batch | us |"
echo "|---|---|---|---|---|---|"
for round in 1 2; do
  extra=""; [ $round = 1 ] && extra=--correctness
  EDGEMV_NVCC_SPLIT=0 EDGEMV_CACHE_DIR=/tmp/c_whole python bench/split_compile_ab.py --label whole $extra
  EDGEMV_NVCC_SPLIT=1 EDGEMV_CACHE_DIR=/tmp/c_split python bench/split_compile_ab.py --label split $extra
done
EDGEMV_CACHE_DIR=/tmp/c_plugin python -m pytest -q -p no:cacheprovider --durations=3 tests/test_trt_plugin.py 2>&1 | tail -8
for split in 0 1; do
  rm -rf /tmp/c_e2e /tmp/triton_e2e
  EDGEMV_NVCC_SPLIT=$split EDGEMV_CACHE_DIR=/tmp/c_e2e TRITON_CACHE_DIR=/tmp/triton_e2e \
    python bench/e2e.py --impls triton --modes eager 2>&1 | grep "first call" | sed "s/^/split=$split: /"
done
date -u
} 2>&1 | tee "${OUT:-/tmp}/session16b.log"
