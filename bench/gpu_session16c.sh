#!/bin/bash
# Sixteenth session, third call (an H200): the CUDA kernel's build now runs in a thread beside the Triton candidates'
# compiles and timings on a problem's first call (edgemv.ops.scan_tune._build_beside). MambaVision-T's first eager
# call with every cache empty, against the same with only the CUDA library already built (nvcc's share taken out),
# twice each; then the scan's GPU tests. Output in $OUT/session16c.log.
set -u
source bench/device_header.sh
export PYTHONUNBUFFERED=1
{
device_header
for round in 1 2; do
  rm -rf /tmp/c_e2e /tmp/triton_e2e
  EDGEMV_CACHE_DIR=/tmp/c_e2e TRITON_CACHE_DIR=/tmp/triton_e2e python bench/e2e.py --impls triton --modes eager \
    2>&1 | grep "first call" | head -1 | sed "s/^/empty caches: /"
  rm -rf /tmp/c_e2e /tmp/triton_e2e
  EDGEMV_CACHE_DIR=/tmp/c_e2e python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"
  EDGEMV_CACHE_DIR=/tmp/c_e2e TRITON_CACHE_DIR=/tmp/triton_e2e python bench/e2e.py --impls triton --modes eager \
    2>&1 | grep "first call" | head -1 | sed "s/^/CUDA library prebuilt: /"
done
EDGEMV_CACHE_DIR=/tmp/c_tests python -m pytest -q -p no:cacheprovider tests/test_scan_tune.py tests/test_scan_cuda_gpu.py \
  tests/test_scan.py 2>&1 | tail -3
date -u
} 2>&1 | tee "${OUT:-/tmp}/session16c.log"
