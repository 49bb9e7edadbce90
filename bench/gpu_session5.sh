#!/bin/bash
# One device call (docs/benchmarks.md, "The rows form"): the GPU tests of the CUDA kernel, the rows form beside the
# staged form (correctness, then times), and Nsight Compute counters at 160 x 196 batch 128 fp16.
# NCU="cuda-rows --split 2;cuda-lean --split 2 --contiguous" picks the profiled kernels (default: none).
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d)
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -3
python bench/scan_rows.py "$@"
IFS=';' read -ra profiled <<< "${NCU:-}"
for k in "${profiled[@]}"; do
  echo "== ncu $k"
  bash bench/ncu_scan.sh --variant $k 2>&1 | head -30
done
