#!/bin/bash
# Seventh session, fourth device call: the GPU tests after they were parametrized by form, and Nsight Compute's
# counters of the short form at 320 x 49 batch 128 fp16 (model's layout).
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d)
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -1
bash bench/ncu_scan.sh --variant cuda-short --dim 320 --length 49 --batch 128
