#!/bin/bash
# Ninth session: mamba_ssm beside 'auto' (bench/scan_vs_mamba.py, as in the seventh session's gpu_session7g.sh), now
# with the model's dt_rank in the inputs; needs .mamba_ref carried. Output also in $OUT/session9c.log.
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d) PYTHONUNBUFFERED=1
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python bench/scan_vs_mamba.py --src .mamba_ref --dtypes float16 float32 --batches 128 256 2>&1 | grep -v "^  "
} 2>&1 | tee "${OUT:-/tmp}/session9c.log"
