#!/bin/bash
# Twelfth session, third call. (1) The rows form reading 16-bit B and C two values per load (ROWS_BC_PAIRS=1:
# 8 loads and registers per chunk instead of 16, 121-123 registers), at 128 registers and at 96 (20 blocks per SM,
# 8-20 bytes spilled), against the default build; fp16, the model's layout (the pairs apply there). (2) The short
# form with and without its max-shared carveout (SHORT_CARVEOUT=0: the driver's split), since the rows form lost
# 1.3-1.4x to that carveout (gpu_session12b.sh). Correctness of each build first; two rounds, alternating.
# (ROWS_BC_PAIRS, ROWS_PAIRS_MIN_BLOCKS and SHORT_CARVEOUT were knobs of the working tree of that call; 845bfde
# keeps the pairs and the driver's split without them.)
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s12 PYTHONUNBUFFERED=1
run() {
  python bench/scan_rows.py "$@" 2>&1 | grep -v "^$" | grep -v "^correctness f\|^times in"
}
{
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for round in 1 2; do
  for D in "ROWS_BC_PAIRS=0" "ROWS_BC_PAIRS=1" "ROWS_BC_PAIRS=1 ROWS_PAIRS_MIN_BLOCKS=20"; do
    echo "== round $round: rows, $D"
    run --kernels "rows 2" --batches 128 256 --dtypes float16 --layouts model --define $D
  done
  for D in "SHORT_CARVEOUT=1" "SHORT_CARVEOUT=0"; do
    echo "== round $round: short, $D"
    run --shape 320 49 --kernels "short 2" --batches 128 256 --dtypes float16 float32 --layouts model --define $D
  done
done
} 2>&1 | tee "${OUT:-/tmp}/session12c.log"
