#!/bin/bash
# Seventh session, third device call: where the short form's time goes (bench/scan_rows_ablation.py --form short, 320
# x 49), and the short form beside the rows form where both apply (160 x 64).
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d)
python bench/scan_rows_ablation.py --form short
python bench/scan_rows.py --shape 160 64 --kernels "rows 2" "short 2" --batches 128 256 --dtypes float16 float32 \
  --layouts model contiguous 2>&1 | grep -v "^correctness"
