#!/bin/bash
# Eighth session, fifth and sixth device calls: the rows form's wide float32 build (96 registers, 20 blocks per SM),
# which the entry point picks for grids larger than one wave of the default build (fifth call), then (sixth, this
# script as it stands) for grids it runs in fewer waves than the default build. GPU tests first (one new: the wide
# build against float64), then float32 at 160 x 196 as shipped and with ROWS_WIDE_MIN_BLOCKS=14 (the wide build
# then the same as the default: the previous behaviour), alternately, twice. Output also in $OUT/session8d.log.
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s8 PYTHONUNBUFFERED=1
LOG=${OUT:-/tmp}/session8d.log
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -2
python -c "
import torch
from edgemv.ops import scan_cuda
for b in (64, 128, 192, 211, 212, 256, 277, 278, 384, 422, 423, 512):
    u = torch.empty(b, 160, 196, device='cuda')
    print(f'batch {b}: wide build {scan_cuda.rows_wide_build(u)}')"
for round in ${ROUNDS:-1 2}; do
  for knob in "" "ROWS_WIDE_MIN_BLOCKS=14"; do
    echo "== ${knob:-as shipped}, round $round"
    python bench/scan_rows.py --kernels "rows 2" --layouts model contiguous --dtypes float32 \
      --batches 64 128 256 384 512 ${knob:+--define $knob} | grep -E "copy|passed|^\| float"
  done
done
} 2>&1 | tee "$LOG"
