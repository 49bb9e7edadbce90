#!/bin/bash
# Twelfth session, fifth call: the GPU side of the entry points' refactor for the CPU emulation's 16-bit types
# (for_dtype shared by the CUDA and CPU entry points; the 16-bit conversions no longer behind #ifndef): the GPU tests
# of the CUDA kernels, and bench/scan_rows.py's correctness of the rows and short forms (123 cases) with one timing.
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s12e PYTHONUNBUFFERED=1
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -2
python bench/scan_rows.py --kernels "rows 2" --batches 128 --dtypes float16 --layouts model 2>&1 | grep -v "^$"
} 2>&1 | tee "${OUT:-/tmp}/session12e.log"
