#!/bin/bash
# Eighth session, fourth device call: the rows form's register budget again after the predicated B and C loads.
# ptxas gives a one-warp block 128, 96 or 80 registers; ROWS_MIN_BLOCKS 14 (the default) and 16 give 128 (16 blocks
# per SM), 18 and 20 give 96 (20 per SM: 160 x 196 batch 256, 2,560 blocks, in one wave on 132 SMs) with 16-20 bytes
# spilled in 16 bits and none in fp32 (before: 52-80 bytes, and slower). Alternately, twice, at 160 x 196.
# Output also in $OUT/session8c.log.
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s8 PYTHONUNBUFFERED=1
LOG=${OUT:-/tmp}/session8c.log
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
for round in 1 2; do
  for mb in 14 18; do
    echo "== ROWS_MIN_BLOCKS=$mb, round $round"
    python bench/scan_rows.py --kernels "rows 2" --layouts model contiguous --batches 64 128 256 \
      --define ROWS_MIN_BLOCKS=$mb | grep -E "copy|passed|^\| float"
  done
done
} 2>&1 | tee "$LOG"
