#!/bin/bash
# Twelfth session, fourth call, on the tree that keeps both changes (the rows form's 16-bit B and C in pairs, the
# short form at the driver's shared-memory split): the GPU tests of the CUDA kernels, then the table for the
# fastest path ('triton', i.e. 'auto': correctness of 'triton' and 'chunked' on the 25 cases first), then the rows
# and short forms' own tables. Output in $OUT/session12d.log.
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s12d PYTHONUNBUFFERED=1
{
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -2
python bench/scan.py --impls triton --out "${OUT:-/tmp}" 2>&1 | grep -v "^$"
python bench/scan_rows.py --kernels "rows 2" --batches 128 256 --layouts model contiguous 2>&1 | grep -v "^$"
python bench/scan_rows.py --shape 320 49 --kernels "short 2" --batches 128 256 --layouts model contiguous 2>&1 \
  | grep -v "^$"
} 2>&1 | tee "${OUT:-/tmp}/session12d.log"
