#!/bin/bash
# Seventh session, after the review: the entry points' dispatch rewritten (same kernels: identical sm_90 SASS), so the
# GPU tests, the rows and short forms' correctness cases, and one timing of each against the numbers before.
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d)
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -1
python bench/scan_rows.py --kernels "rows 2" --batches 128 --dtypes float16 --layouts model 2>&1 | grep -E "passed|copy|^\| float|FAIL"
python bench/scan_rows.py --shape 320 49 --kernels "staged 2" "short 2" --batches 128 --dtypes float16 --layouts model \
  2>&1 | grep -E "copy|^\| float|FAIL"
