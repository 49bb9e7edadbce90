#!/bin/bash
# Ninth session: the issue's table (run before and after the fp32 softplus change, 3685fa0) (`python bench/scan.py`: correctness of 'triton' and 'chunked'
# against float64, then times, GB/s and share of the copy bandwidth at MambaVision-T's two scan shapes, batch 64 /
# 128 / 256, fp16 and fp32, on the model's layout with the model's dt_rank). Output also in $OUT/session9f.log.
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d) PYTHONUNBUFFERED=1
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python bench/scan.py 2>&1 | grep -v "^  "
} 2>&1 | tee "${OUT:-/tmp}/session9f.log"
