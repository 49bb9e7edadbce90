#!/bin/bash
# Twelfth session, sixth call, on an H100: the session's kept kernels (the rows form's 16-bit B and C in pairs, the
# short form at the driver's shared-memory split) against the previous commit's sources (606189b, carried in
# .baseline/s12 and put in place by bench/ab_files.sh), fp16 and fp32 on the model's layout, one round each (the
# session's device time was nearly spent). Output in $OUT/session12f.log.
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s12f PYTHONUNBUFFERED=1
source bench/ab_files.sh
ab_files .baseline/s12/edgemv/ops/cuda scan_common.cuh scan_rows.cuh scan_short.cuh selective_scan_n8.cu cpu_emulation.h
run() {
  python bench/scan_rows.py --batches 128 256 --layouts model "$@" 2>&1 | grep "^|\|copy\|correctness:"
}
{
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
for tree in baseline new; do
  echo "== $tree"
  ab_use $tree
  run --kernels "rows 2" --dtypes float16
  run --shape 320 49 --kernels "short 2" --dtypes float16 float32
done
} 2>&1 | tee "${OUT:-/tmp}/session12f.log"
