#!/bin/bash
# Eighth session, after the review: the two forms' shared step (rows::read_bc, rows::scan_step; the kernels' sm_90
# SASS identical) and the SM count cached per device in the wide build's choice (host code). GPU tests, then
# bench/scan_rows.py's correctness cases and times at both shapes, batch 128 and 256. Output also in $OUT/session8h.log.
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d) PYTHONUNBUFFERED=1
{
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -1
python bench/scan_rows.py --kernels "rows 2" --layouts model --batches 128 256 | grep -E "copy|passed|^\| float"
python bench/scan_rows.py --shape 320 49 --kernels "short 2" --layouts model --batches 128 256 \
  | grep -E "passed|^\| float"
} 2>&1 | tee "${OUT:-/tmp}/session8h.log"
