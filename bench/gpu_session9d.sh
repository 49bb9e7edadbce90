#!/bin/bash
# Ninth session, on an H100 (the GPU section allows an H100 or H200; every earlier number of this session is
# an H200's): the CUDA kernel's GPU tests, then the rows form at 160 x 196 and the short form at 320 x 49 on the
# model's layout (model's dt_rank), fp16 and fp32, batch 64 / 128 / 256, with the share of the copy bandwidth
# measured in the same run on this card. Output also in $OUT/session9d.log.
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d) PYTHONUNBUFFERED=1
{
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -1
python bench/scan_rows.py --kernels "rows 2" --layouts model contiguous | grep -E "copy|passed|^\| float"
python bench/scan_rows.py --shape 320 49 --kernels "short 2" --layouts model contiguous | grep -E "passed|^\| float"
} 2>&1 | tee "${OUT:-/tmp}/session9d.log"
