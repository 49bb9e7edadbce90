#!/bin/bash
# Ninth session: the fp32 inputs' softplus as a degree-8 polynomial for log1p (12 instructions, 1 MUFU) instead of
# the atanh series with a division (22, 2 MUFU), as accurate in fp32. GPU tests and the 25 correctness cases
# for every kernel 'auto' may pick (8 shards) first, then the rows form (160 x 196) and the short form (320 x 49) in
# fp32 against the previous commit's scan_common.cuh (.baseline/s9c, carried), alternately, twice.
# Output also in $OUT/session9h.log.
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s9h PYTHONUNBUFFERED=1
source bench/ab_files.sh
ab_files .baseline/s9c scan_common.cuh
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -1
bash bench/correctness_shards.sh "^correctness|FAIL"
grep -h "worst rel err" /tmp/corr_*.log | grep float32 | sort -k6 -g | tail -3
for round in 1 2; do
  for tree in new baseline; do
    ab_use $tree; echo "== $tree, round $round"
    python bench/scan_rows.py --kernels "rows 2" --layouts model contiguous --batches 128 256 --dtypes float32 \
      | grep -E "copy|passed|^\| float"
    python bench/scan_rows.py --shape 320 49 --kernels "short 2" --layouts model contiguous --batches 128 256 \
      --dtypes float32 | grep -E "passed|^\| float"
  done
done
ab_use new
} 2>&1 | tee "${OUT:-/tmp}/session9h.log"
