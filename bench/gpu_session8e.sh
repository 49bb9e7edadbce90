#!/bin/bash
# Eighth session, seventh device call, a trial not kept (no faster): the rows form with its u and y offsets computed at
# each access (a multiply-add in lambdas u_off(j), y_off(j)) instead of held in the arrays u_off[8], y_off[8] (16
# registers); run on that trial's tree (scan_rows.cuh changed as just said; not committed), as is (128 registers) and
# with ROWS_MIN_BLOCKS=18 (96 registers for every dtype: 16-bit inputs then spill 4-12 bytes, 16-20 with the arrays),
# against bb4462a's scan_rows.cuh (.baseline/s8, carried). 160 x 196, batch 128 and 256. Output also in
# $OUT/session8e.log.
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s8 PYTHONUNBUFFERED=1
LOG=${OUT:-/tmp}/session8e.log
CUDA_DIR=edgemv/ops/cuda
cp $CUDA_DIR/scan_rows.cuh /tmp/new_rows.cuh
run() { python bench/scan_rows.py --kernels "rows 2" --layouts model contiguous --batches 128 256 "$@" \
          | grep -E "copy|passed|^\| float"; }
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
for round in 1 2; do
  cp /tmp/new_rows.cuh $CUDA_DIR/scan_rows.cuh
  echo "== offsets at each access, round $round"; run
  echo "== offsets at each access, ROWS_MIN_BLOCKS=18, round $round"; run --define ROWS_MIN_BLOCKS=18
  cp .baseline/s8/scan_rows_bb4462a.cuh $CUDA_DIR/scan_rows.cuh
  echo "== bb4462a, round $round"; run
done
cp /tmp/new_rows.cuh $CUDA_DIR/scan_rows.cuh
} 2>&1 | tee "$LOG"
