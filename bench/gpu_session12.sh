#!/bin/bash
# Twelfth session, first call: the rows form with its next chunk's loads as cp.async straight into shared memory
# (ROWS_ASYNC=1, scan_rows.cuh) against the register prefetch, at 128 registers (16 blocks per SM) and at 96 (20
# per SM: MambaVision-T's level 2 at batch 256 is 2,560 one-warp blocks, one wave on 132 SMs only at 20), each
# build's correctness on bench/scan_rows.py's cases first; two rounds, alternating. Output in $OUT/session12.log.
# (ROWS_ASYNC and ROWS_CARVEOUT are knobs of commit 8f8c6b7's sources, reverted in 3eacc8d: run it there.)
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s12 PYTHONUNBUFFERED=1
{
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for round in 1 2; do
  for D in "" "ROWS_ASYNC=1" "ROWS_ASYNC=1 ROWS_MIN_BLOCKS=20"; do
    echo "== round $round: ${D:-default build}"
    python bench/scan_rows.py --kernels "rows 2" --batches 128 256 --dtypes float16 float32 \
      --layouts model contiguous ${D:+--define $D} 2>&1 | grep -v "^$"
  done
done
} 2>&1 | tee "${OUT:-/tmp}/session12.log"
