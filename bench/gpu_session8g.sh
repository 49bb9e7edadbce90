#!/bin/bash
# Eighth session, last device call: how much the second, partial wave costs the rows form at 160 x 196 fp16. 2,112
# blocks (batch 211) are one wave at 16 blocks per SM on 132 SMs, batch 212 starts a second one, batch 256 has 448
# blocks in it. Output also in $OUT/session8g.log.
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d) PYTHONUNBUFFERED=1
python bench/scan_rows.py --kernels "rows 2" --layouts model contiguous --dtypes float16 \
  --batches 128 192 211 212 232 256 2>&1 | grep -E "copy|passed|^\| float" | tee "${OUT:-/tmp}/session8g.log"
