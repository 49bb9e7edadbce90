#!/bin/bash
# Ninth session: Nsight Compute's counters of the rows form at 160 x 196 fp16 on the model's layout, batch 211 (one
# wave of 16 blocks per SM on 132 SMs) and 256 (two), to see how busy the schedulers and the MUFU pipe are when the
# grid fills the GPU (the fifth session's counters were at batch 128: 2.3 warps per scheduler).
# Output also in $OUT/session9e.log.
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d) PYTHONUNBUFFERED=1
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
for b in 211 256; do
  echo "== rows, fp16, batch $b"
  bash bench/ncu_scan.sh --variant cuda-rows --dim 160 --length 196 --batch $b
done
} 2>&1 | tee "${OUT:-/tmp}/session9e.log"
