#!/bin/bash
# Seventh session, first device call (docs/benchmarks.md, "The short form"): the CUDA kernel's GPU tests (the short
# form's among them), then the rows and short forms' correctness (bench/scan_rows.py's cases, each form on those it
# takes) and device times at MambaVision-T's level 3 (320 x 49, which only the staged and short forms take) and at
# 160 x 64 (which the rows form takes too).
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d)
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -3
python bench/scan_rows.py --shape 320 49 --kernels "staged 2" "staged 4" "short 2"
python bench/scan_rows.py --shape 160 64 --kernels "rows 2" "short 2" --batches 128 256 --dtypes float16 \
  --layouts model contiguous 2>&1 | grep -v "^correctness"
