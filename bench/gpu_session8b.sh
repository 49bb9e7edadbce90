#!/bin/bash
# Eighth session, third device call: predicated B and C loads (no select of a loaded value or zero, which waited for
# the load where it stood: in the rows form before the last whole chunk's scan, when the tail's loads go out) in the
# rows form (160 x 196) and the short form (320 x 49), against the previous commit's scan_rows.cuh and
# scan_short.cuh (.baseline/s8, carried), alternately, twice. GPU tests first. Output also in $OUT/session8b.log.
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s8 PYTHONUNBUFFERED=1
LOG=${OUT:-/tmp}/session8b.log
source bench/ab_files.sh
ab_files .baseline/s8 scan_rows.cuh scan_short.cuh
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -2
for round in 1 2; do
  for tree in new baseline; do
    ab_use $tree
    echo "== $tree, round $round"
    python bench/scan_rows.py --kernels "rows 2" --layouts model contiguous | grep -E "copy|passed|^\| float"
    python bench/scan_rows.py --shape 320 49 --kernels "short 2" --layouts model contiguous | grep -E "passed|^\| float"
  done
done
ab_use new
} 2>&1 | tee "$LOG"
