#!/bin/bash
# Twelfth session, second call: the first call's rows form ran 1.3-1.5x slower than the tenth session's on every
# build, the default one too. Two changes are common to them: the shared-memory carveout set at launch, and the
# refactored loads of the register path. So: the previous commit's sources (carried in .baseline/s12, put in place
# with bench/ab_files.sh), and this tree's builds with the carveout (ROWS_CARVEOUT=1) and without (0, the driver's
# split, as before), two rounds, alternating.
# (ROWS_ASYNC and ROWS_CARVEOUT are knobs of commit 8f8c6b7's sources, reverted in 3eacc8d: run it there.)
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s12 PYTHONUNBUFFERED=1
source bench/ab_files.sh
ab_files .baseline/s12/edgemv/ops/cuda scan_common.cuh scan_rows.cuh selective_scan_n8.cu
rows() {
  python bench/scan_rows.py --kernels "rows 2" --batches 128 256 --dtypes float16 float32 \
    --layouts model contiguous "$@" 2>&1 | grep -v "^$" | grep -v "^correctness f\|^times in"
}
{
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for round in 1 2; do
  echo "== round $round: the previous commit"
  ab_use baseline; rows; ab_use new
  for D in "ROWS_CARVEOUT=0" "ROWS_CARVEOUT=1" "ROWS_ASYNC=1 ROWS_MIN_BLOCKS=20 ROWS_CARVEOUT=0" \
           "ROWS_ASYNC=1 ROWS_MIN_BLOCKS=20 ROWS_CARVEOUT=1"; do
    echo "== round $round: $D"
    rows --define $D
  done
done
} 2>&1 | tee "${OUT:-/tmp}/session12b.log"
