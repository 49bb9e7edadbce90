#!/bin/bash
# Ninth session: the short form's scan two steps at a time (one shuffle and one store of y per pair of steps, where a
# step at a time issued both per step) against the previous commit's scan_short.cuh (.baseline/s9b, carried),
# alternately, twice, at 320 x 49 on the model's layout and contiguous inputs. GPU tests first.
# Output also in $OUT/session9g.log.
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s9g PYTHONUNBUFFERED=1
source bench/ab_files.sh
ab_files .baseline/s9b scan_short.cuh
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -1
for round in 1 2; do
  for tree in new baseline; do
    ab_use $tree; echo "== $tree, round $round"
    python bench/scan_rows.py --shape 320 49 --kernels "short 2" --layouts model contiguous \
      | grep -E "copy|passed|^\| float"
  done
done
ab_use new
} 2>&1 | tee "${OUT:-/tmp}/session9g.log"
