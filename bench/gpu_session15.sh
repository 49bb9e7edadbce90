#!/bin/bash
# Fifteenth session (an H100): does the rows form's 16-bit build at 96 registers (20 one-warp blocks per SM, so 160 x
# 196 batch 256 runs in one wave instead of two) pay on an H100? The eighth session measured it slower on an H200
# (fp16 batch 256 41.5-41.7 us against 38.4-39.6), but the H100's memory is 1.4x slower, where more resident warps
# may hide more. Default build (ROWS_MIN_BLOCKS=14: 128 registers, 16 per SM) against ROWS_MIN_BLOCKS=18 and 20
# (96 registers; ptxas gives one-warp blocks 128, 96 or 80), fp16 and bf16, the model's layout, batch 128 and 256,
# two rounds alternating. Output in $OUT/session15.log.
set -u
source bench/device_header.sh
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s15 PYTHONUNBUFFERED=1
rows() {
  python bench/scan_rows.py --kernels "rows 2" --batches 128 256 --dtypes float16 bfloat16 --layouts model "$@" \
    2>&1 | grep -v "^$"
}
{
device_header
for round in 1 2; do
  for D in "ROWS_MIN_BLOCKS=14" "ROWS_MIN_BLOCKS=20"; do
    echo "== round $round: $D"
    rows --define $D
  done
done
date -u
} 2>&1 | tee "${OUT:-/tmp}/session15.log"
