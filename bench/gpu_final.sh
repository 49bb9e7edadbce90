#!/bin/bash
# The closing device call of a scan session (docs/benchmarks.md): the CUDA kernel's GPU tests, the 25
# correctness cases for every kernel 'auto' may pick in 8 parallel shards, then the kernels side by side with what
# 'auto' picks at the 8 problems, then MambaVision-T end to end with 'auto' (not with --no-e2e).
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d)
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -2
bash bench/correctness_shards.sh
python bench/scan_variants.py 2>&1 | grep -v "^  "
[ "${1:-}" = "--no-e2e" ] || python bench/e2e.py --impls triton --modes eager reduce-overhead 2>&1 | tail -8
