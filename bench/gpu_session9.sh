#!/bin/bash
# Ninth session, second device call: B and C read in 8-byte groups where their rows are 8-byte aligned (MambaVision's
# x_proj output), in the rows form (160 x 196) and the short form (320 x 49), against the previous commit's
# scan_rows.cuh and scan_short.cuh (.baseline/s9, carried), alternately, twice, on the model's layout with the
# model's dt_rank (aligned rows); then once with dt_rank 5 (unaligned: both read a value per lane). GPU tests first.
# Output also in $OUT/session9.log.
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s9 PYTHONUNBUFFERED=1
LOG=${OUT:-/tmp}/session9.log
source bench/ab_files.sh
ab_files .baseline/s9 scan_rows.cuh scan_short.cuh
times() {  # extra arguments of bench/scan_rows.py
  python bench/scan_rows.py --kernels "rows 2" --layouts model --batches 128 256 "$@" | grep -E "copy|passed|^\| float"
  python bench/scan_rows.py --shape 320 49 --kernels "short 2" --layouts model --batches 128 256 "$@" \
    | grep -E "passed|^\| float"
}
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -2
for round in 1 2; do
  for tree in new baseline; do
    ab_use $tree; echo "== $tree, round $round, the model's dt_rank"; times
  done
done
for tree in new baseline; do
  ab_use $tree; echo "== $tree, dt_rank 5"; times --dt-rank 5
done
ab_use new
} 2>&1 | tee "$LOG"
